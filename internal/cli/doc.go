// Package cli is txmq's command line: one file per subcommand, built with
// cobra. Run is the only entry point; it never calls os.Exit, so tests drive
// the real commands with arguments and buffers.
package cli

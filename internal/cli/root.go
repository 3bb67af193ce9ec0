package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// errUsage marks an error in the command line itself.
var errUsage = errors.New("usage")

// Run executes the txmq command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "txmq:", err)
		if errors.Is(err, errUsage) {
			return ExitUsage
		}
		return ExitError
	}
	return ExitOK
}

// NewRootCommand builds the command tree.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "txmq",
		Short: "A RocketMQ-compatible message broker with transactional messages",
		Long: `txmq is a message broker that speaks Apache RocketMQ's remoting protocol, so
RocketMQ applications and the official clients work against it unchanged.
Its headline feature is RocketMQ-style transactional messages.

Start a broker with an embedded name server, data under ./txmq-data:

  txmq serve

Then point clients at the name server 127.0.0.1:9876.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w (see '%s --help')", errUsage, err, c.CommandPath())
	})
	root.AddCommand(newVersionCommand(), newServeCommand(), newNamesrvCommand(), newAdminCommand())
	root.AddCommand(newBenchCommand())
	return root
}

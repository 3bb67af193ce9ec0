package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newServeCommand() *cobra.Command {
	var cf *configFlags
	var pprofAddr string
	cmd := &cobra.Command{
		Use:   "serve [-c broker.conf] [--key value ...]",
		Short: "Run a broker (with an embedded name server by default)",
		Long: `Run a broker. With the defaults it also runs a name server in the same process
(embeddedNamesrv=true, namesrvListenPort 9876), listens for clients on 10911 and keeps
its data under ./txmq-data.

Configuration comes from the defaults, then -c FILE (an Apache RocketMQ broker.conf:
key=value lines with RocketMQ's key names), then flags, each named after its key
(--listenPort 10911, --flushDiskType SYNC_FLUSH, ...). A bad value stops start-up
with a message naming the key. SIGTERM or SIGINT shuts down cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(cmd.ErrOrStderr(), "info")
			cfg, err := cf.load(log)
			if err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			return runServe(cmd.Context(), cfg, cmd.ErrOrStderr(), pprofAddr)
		},
	}
	cf = addConfigFlags(cmd.Flags())
	// For profiling (docs/performance.md): net/http/pprof on a loopback
	// address. Hidden: not an operator setting.
	cmd.Flags().StringVar(&pprofAddr, "pprofAddr", "", "serve net/http/pprof on this loopback host:port")
	_ = cmd.Flags().MarkHidden("pprofAddr")
	return cmd
}

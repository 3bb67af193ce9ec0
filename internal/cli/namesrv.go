package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/txmq/txmq/internal/namesrv"
)

func newNamesrvCommand() *cobra.Command {
	var host, level string
	var port int
	cmd := &cobra.Command{
		Use:   "namesrv",
		Short: "Run a stand-alone name server (for clusters of several brokers)",
		Long: `Run a name server on its own. Brokers started with --embeddedNamesrv=false
--namesrvAddr host:port register with it; clients ask it for routes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port < 0 || port > 65535 {
				return fmt.Errorf("%w: --listenPort %d: want 0 to 65535", errUsage, port)
			}
			log := newLogger(cmd.ErrOrStderr(), level)
			s, err := namesrv.New(namesrv.Config{Addr: net.JoinHostPort(host, strconv.Itoa(port)), Logger: log})
			if err != nil {
				return err
			}
			if err := s.Start(); err != nil {
				return err
			}
			<-cmd.Context().Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return s.Shutdown(ctx)
		},
	}
	cmd.Flags().StringVar(&host, "listenHost", "", "interface to listen on (empty: all)")
	cmd.Flags().IntVar(&port, "listenPort", 9876, "port to listen on (0 picks a free one)")
	cmd.Flags().StringVar(&level, "logLevel", "info", "debug, info, warn or error")
	return cmd
}

// Command txmq is a RocketMQ-compatible message broker with transactional
// messages. See `txmq --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/txmq/txmq/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

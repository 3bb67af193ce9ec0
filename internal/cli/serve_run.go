package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/txmq/txmq/internal/config"
)

// runServe runs the broker until ctx is cancelled.
func runServe(ctx context.Context, cfg config.Config, logw io.Writer) error {
	log := newLogger(logw, cfg.LogLevel)
	if err := os.MkdirAll(cfg.StorePathRootDir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	log.Info("txmq serve: the broker is not built yet; only the configuration was checked", "dataDir", cfg.StorePathRootDir)
	<-ctx.Done()
	return nil
}

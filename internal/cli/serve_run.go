package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/txmq/txmq/internal/broker"
	"github.com/txmq/txmq/internal/config"
	"github.com/txmq/txmq/internal/namesrv"
)

// shutdownTimeout bounds a clean shutdown after SIGTERM.
const shutdownTimeout = 30 * time.Second

// runServe runs the broker (and the embedded name server) until ctx is
// cancelled, then shuts both down in order.
func runServe(ctx context.Context, cfg config.Config, logw io.Writer) error {
	log := newLogger(logw, cfg.LogLevel)
	start := time.Now()
	var ns *namesrv.Server
	if cfg.EmbeddedNamesrv {
		var err error
		ns, err = namesrv.New(namesrv.Config{
			Addr:   net.JoinHostPort(cfg.ListenHost, strconv.Itoa(cfg.NamesrvListenPort)),
			Logger: log,
		})
		if err != nil {
			return fmt.Errorf("start embedded name server: %w", err)
		}
		if err := ns.Start(); err != nil {
			return fmt.Errorf("start embedded name server: %w", err)
		}
		// The broker registers with the embedded name server too.
		local := net.JoinHostPort("127.0.0.1", strconv.Itoa(ns.Addr().(*net.TCPAddr).Port))
		if cfg.NamesrvAddr == "" {
			cfg.NamesrvAddr = local
		} else {
			cfg.NamesrvAddr = local + ";" + cfg.NamesrvAddr
		}
	}
	stopNamesrv := func() error {
		if ns == nil {
			return nil
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return ns.Shutdown(sctx)
	}
	b, err := broker.New(cfg, broker.Options{Logger: log})
	if err != nil {
		return errors.Join(fmt.Errorf("start broker: %w", err), stopNamesrv())
	}
	if err := b.Start(); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return errors.Join(fmt.Errorf("start broker: %w", err), b.Shutdown(sctx), stopNamesrv())
	}
	attrs := []any{"listen", b.Addr().String(), "advertised", b.AdvertisedAddr(), "dataDir", cfg.StorePathRootDir,
		"flushDiskType", cfg.FlushDiskType, "startup", time.Since(start).Round(time.Millisecond)}
	if ns != nil {
		attrs = append(attrs, "namesrv", ns.Addr().String())
	}
	log.Info("txmq ready", attrs...)

	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = errors.Join(b.Shutdown(sctx), stopNamesrv())
	if err == nil {
		log.Info("shut down cleanly")
	}
	return err
}

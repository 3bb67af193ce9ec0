package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strconv"
	"time"

	"github.com/txmq/txmq/internal/broker"
	"github.com/txmq/txmq/internal/config"
	"github.com/txmq/txmq/internal/namesrv"
)

// shutdownTimeout bounds a clean shutdown after SIGTERM.
const shutdownTimeout = 30 * time.Second

// runServe runs the broker (and the embedded name server) until ctx is
// cancelled, then shuts both down in order. A non-empty pprofAddr (a
// loopback host:port) also serves net/http/pprof there.
func runServe(ctx context.Context, cfg config.Config, logw io.Writer, pprofAddr string) error {
	log := newLogger(logw, cfg.LogLevel)
	start := time.Now()
	if pprofAddr != "" {
		stop, err := servePprof(pprofAddr)
		if err != nil {
			return fmt.Errorf("%w: --pprofAddr: %w", errUsage, err)
		}
		defer stop()
		log.Info("pprof listening", "addr", pprofAddr)
	}
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

// servePprof serves the net/http/pprof handlers on addr, which must be a
// loopback address, and returns a function that stops it.
func servePprof(addr string) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s is not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	// Contended locks show in /debug/pprof/mutex: one event in 100 is
	// sampled, which costs nothing measurable.
	runtime.SetMutexProfileFraction(100)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

package cli

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"

	"github.com/txmq/txmq/internal/config"
)

// configFlags binds -c FILE and one flag per configuration key (named as
// the broker.conf key, e.g. --listenPort) to a command.
type configFlags struct {
	file   string
	values map[string]*string
	fs     *pflag.FlagSet
}

func addConfigFlags(fs *pflag.FlagSet) *configFlags {
	cf := &configFlags{values: map[string]*string{}, fs: fs}
	fs.StringVarP(&cf.file, "config", "c", "", "broker.conf file (Apache RocketMQ key names)")
	for _, k := range config.Keys() {
		cf.values[k.Name] = fs.String(k.Name, k.Default, k.Help)
	}
	return cf
}

// load builds the configuration: defaults, then the file, then the flags
// given on the command line. Unknown file keys are logged once.
func (cf *configFlags) load(log *slog.Logger) (config.Config, error) {
	cfg := config.DefaultConfig()
	if cf.file != "" {
		unknown, err := cfg.ParseFile(cf.file)
		if err != nil {
			return cfg, err
		}
		if len(unknown) > 0 && log != nil {
			log.Warn("ignoring unknown configuration keys", "file", cf.file, "keys", strings.Join(unknown, ","))
		}
	}
	var err error
	cf.fs.Visit(func(f *pflag.Flag) {
		if v, ok := cf.values[f.Name]; ok && err == nil {
			if e := cfg.Set(f.Name, *v); e != nil {
				err = fmt.Errorf("flag --%s: %w", f.Name, e)
			}
		}
	})
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

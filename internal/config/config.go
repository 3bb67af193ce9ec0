package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Flush modes, with RocketMQ's names.
const (
	AsyncFlush = "ASYNC_FLUSH"
	SyncFlush  = "SYNC_FLUSH"
)

// DefaultMessageDelayLevel is RocketMQ's default delay ladder.
const DefaultMessageDelayLevel = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

// Config is the broker's configuration. The `conf` tag is the broker.conf
// key (Apache RocketMQ's name where one exists); `help` is shown by --help
// and in docs.
type Config struct {
	BrokerClusterName string `conf:"brokerClusterName" help:"cluster this broker belongs to"`
	BrokerName        string `conf:"brokerName" help:"broker name (routes group brokers by it)"`
	BrokerID          int64  `conf:"brokerId" help:"0 for a master"`
	ListenPort        int    `conf:"listenPort" help:"remoting port for clients (0 picks a free port)"`
	NamesrvAddr       string `conf:"namesrvAddr" help:"name servers to register with, host:port;host:port (empty with embeddedNamesrv: the embedded one)"`
	BrokerIP1         string `conf:"brokerIP1" help:"address advertised to clients (empty: a non-loopback address of this host, else 127.0.0.1)"`
	ListenHost        string `conf:"listenHost" help:"txmq: interface the listeners bind (empty: all)"`

	StorePathRootDir           string `conf:"storePathRootDir" help:"data directory"`
	StorePathCommitLog         string `conf:"storePathCommitLog" help:"commit log directory (empty: <storePathRootDir>/commitlog)"`
	MappedFileSizeCommitLog    int64  `conf:"mappedFileSizeCommitLog" help:"commit log segment size in bytes"`
	MappedFileSizeConsumeQueue int64  `conf:"mappedFileSizeConsumeQueue" help:"consume queue file size in bytes (a multiple of 20)"`
	FlushDiskType              string `conf:"flushDiskType" help:"ASYNC_FLUSH or SYNC_FLUSH"`
	FlushIntervalCommitLog     int64  `conf:"flushIntervalCommitLog" help:"ASYNC_FLUSH fsync interval, ms"`
	MaxMessageSize             int    `conf:"maxMessageSize" help:"largest message body in bytes"`
	FileReservedTime           int    `conf:"fileReservedTime" help:"hours a commit log segment is kept"`
	DeleteWhen                 string `conf:"deleteWhen" help:"hours of the day expired segments are deleted, e.g. 04 or 04;16"`
	DiskMaxUsedSpaceRatio      int    `conf:"diskMaxUsedSpaceRatio" help:"disk use percentage above which expired segments are deleted at once"`
	MaxIndexSlots              int    `conf:"maxHashSlotNum" help:"hash slots per new index file (txmq default 1000000; RocketMQ's is 5000000)"`
	MaxIndexEntries            int    `conf:"maxIndexNum" help:"entries per index file"`

	AutoCreateTopicEnable           bool   `conf:"autoCreateTopicEnable" help:"create topics on first send"`
	AutoCreateSubscriptionGroup     bool   `conf:"autoCreateSubscriptionGroup" help:"create consumer groups on first heartbeat"`
	DefaultTopicQueueNums           int    `conf:"defaultTopicQueueNums" help:"queues of an auto-created topic"`
	LongPollingEnable               bool   `conf:"longPollingEnable" help:"hold pulls until a message arrives"`
	ShortPollingTimeMills           int64  `conf:"shortPollingTimeMills" help:"pull hold time when long polling is off, ms"`
	ChannelExpiredTimeout           int64  `conf:"channelExpiredTimeout" help:"client expiry after the last heartbeat, ms"`
	RegisterNameServerPeriod        int64  `conf:"registerNameServerPeriod" help:"broker registration period, ms"`
	ClientChannelMaxIdleTimeSeconds int    `conf:"clientChannelMaxIdleTimeSeconds" help:"idle connections are closed after this, s"`
	ServerMaxFrameSize              int    `conf:"serverMaxFrameSize" help:"txmq: largest remoting frame accepted, bytes"`
	TransactionEnable               bool   `conf:"transactionEnable" help:"txmq: accept transactional (half) messages"`
	TransactionTimeOut              int64  `conf:"transactionTimeOut" help:"ms after storing before a half message is first checked"`
	TransactionCheckInterval        int64  `conf:"transactionCheckInterval" help:"ms between checks of one half message"`
	TransactionCheckMax             int    `conf:"transactionCheckMax" help:"checks sent before a half message is discarded"`
	TransactionCheckWindow          int    `conf:"transactionCheckWindow" help:"txmq: checks of one producer group outstanding at once (sent within the interval, not answered); more wait, without spending a check; 0: no window"`
	MessageDelayLevel               string `conf:"messageDelayLevel" help:"delay levels, e.g. 1s 5s 10s 1m 2h"`
	TimerMaxDelaySec                int64  `conf:"timerMaxDelaySec" help:"latest delivery time a timer message may ask for, s from now"`
	EmbeddedNamesrv                 bool   `conf:"embeddedNamesrv" help:"txmq: run a name server in the broker process"`
	NamesrvListenPort               int    `conf:"namesrvListenPort" help:"txmq: embedded name server port (0 picks a free port)"`
	GrpcListenPort                  int    `conf:"grpcListenPort" help:"txmq: port reserved for the RocketMQ 5 gRPC endpoint; not served yet (planned), -1 disables"`
	HTTPListenPort                  int    `conf:"httpListenPort" help:"txmq: port reserved for the HTTP metrics endpoint; not served yet (planned), -1 disables"`
	LogLevel                        string `conf:"logLevel" help:"txmq: debug, info, warn or error"`
}

// DefaultConfig returns the defaults: Apache RocketMQ's, with data under
// ./txmq-data and an embedded name server.
func DefaultConfig() Config {
	return Config{
		BrokerClusterName:               "DefaultCluster",
		BrokerName:                      "broker-a",
		BrokerID:                        0,
		ListenPort:                      10911,
		StorePathRootDir:                "./txmq-data",
		MappedFileSizeCommitLog:         1 << 30,
		MappedFileSizeConsumeQueue:      300000 * 20,
		FlushDiskType:                   AsyncFlush,
		FlushIntervalCommitLog:          500,
		MaxMessageSize:                  4 << 20,
		FileReservedTime:                72,
		DeleteWhen:                      "04",
		DiskMaxUsedSpaceRatio:           75,
		MaxIndexSlots:                   1_000_000, // RocketMQ: 5,000,000; see docs/compat.md
		MaxIndexEntries:                 20_000_000,
		AutoCreateTopicEnable:           true,
		AutoCreateSubscriptionGroup:     true,
		DefaultTopicQueueNums:           8,
		LongPollingEnable:               true,
		ShortPollingTimeMills:           1000,
		ChannelExpiredTimeout:           120_000,
		RegisterNameServerPeriod:        30_000,
		ClientChannelMaxIdleTimeSeconds: 120,
		ServerMaxFrameSize:              16 << 20,
		TransactionEnable:               true,
		TransactionTimeOut:              6000,
		TransactionCheckInterval:        30_000,
		TransactionCheckMax:             15,
		TransactionCheckWindow:          1024,
		MessageDelayLevel:               DefaultMessageDelayLevel,
		TimerMaxDelaySec:                259_200,
		EmbeddedNamesrv:                 true,
		NamesrvListenPort:               9876,
		GrpcListenPort:                  8081,
		HTTPListenPort:                  8080,
		LogLevel:                        "info",
	}
}

// ValueError is a bad configuration value.
type ValueError struct {
	Key     string
	Value   string
	Allowed string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("config: %s=%q is not allowed: %s", e.Key, e.Value, e.Allowed)
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

func bad(key string, v any, allowed string) error {
	return fmt.Errorf("%w: %w", ErrInvalid, &ValueError{Key: key, Value: fmt.Sprint(v), Allowed: allowed})
}

// Validate checks every value and returns the first problem found.
func (c *Config) Validate() error {
	port := func(key string, p int, allowOff bool) error {
		lo := 0
		if allowOff {
			lo = -1
		}
		if p < lo || p > 65535 {
			if allowOff {
				return bad(key, p, "a port from 0 to 65535, or -1 to disable")
			}
			return bad(key, p, "a port from 0 to 65535 (0 picks a free one)")
		}
		return nil
	}
	checks := []error{
		port("listenPort", c.ListenPort, false),
		port("namesrvListenPort", c.NamesrvListenPort, false),
		port("grpcListenPort", c.GrpcListenPort, true),
		port("httpListenPort", c.HTTPListenPort, true),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	switch {
	case c.BrokerName == "" || strings.ContainsAny(c.BrokerName, " \t;:,"):
		return bad("brokerName", c.BrokerName, "a non-empty name without spaces, ';', ':' or ','")
	case c.BrokerClusterName == "" || strings.ContainsAny(c.BrokerClusterName, " \t;:,"):
		return bad("brokerClusterName", c.BrokerClusterName, "a non-empty name without spaces, ';', ':' or ','")
	case c.BrokerID < 0:
		return bad("brokerId", c.BrokerID, "0 (master) or a positive slave id")
	case c.StorePathRootDir == "":
		return bad("storePathRootDir", c.StorePathRootDir, "a directory path")
	case c.MappedFileSizeCommitLog < 64<<10 || c.MappedFileSizeCommitLog > 1<<40:
		return bad("mappedFileSizeCommitLog", c.MappedFileSizeCommitLog, "from 65536 to 2^40 bytes")
	case c.MappedFileSizeConsumeQueue < 20 || c.MappedFileSizeConsumeQueue%20 != 0:
		return bad("mappedFileSizeConsumeQueue", c.MappedFileSizeConsumeQueue, "a positive multiple of 20")
	case c.FlushDiskType != AsyncFlush && c.FlushDiskType != SyncFlush:
		return bad("flushDiskType", c.FlushDiskType, "ASYNC_FLUSH or SYNC_FLUSH")
	case c.FlushIntervalCommitLog < 1 || c.FlushIntervalCommitLog > 60_000:
		return bad("flushIntervalCommitLog", c.FlushIntervalCommitLog, "1 to 60000 ms")
	case c.MaxMessageSize < 1 || c.MaxMessageSize > 64<<20:
		return bad("maxMessageSize", c.MaxMessageSize, "1 to 67108864 bytes")
	case int64(c.MaxMessageSize)+(64<<10) > c.MappedFileSizeCommitLog:
		return bad("maxMessageSize", c.MaxMessageSize, "smaller than mappedFileSizeCommitLog by at least 64 KiB")
	case c.ServerMaxFrameSize < c.MaxMessageSize+(64<<10):
		return bad("serverMaxFrameSize", c.ServerMaxFrameSize, "at least maxMessageSize + 64 KiB")
	case c.FileReservedTime < 1:
		return bad("fileReservedTime", c.FileReservedTime, "at least 1 hour")
	case c.DiskMaxUsedSpaceRatio < 10 || c.DiskMaxUsedSpaceRatio > 95:
		return bad("diskMaxUsedSpaceRatio", c.DiskMaxUsedSpaceRatio, "10 to 95 percent")
	case c.MaxIndexSlots < 1 || c.MaxIndexEntries < 1:
		return bad("maxHashSlotNum/maxIndexNum", fmt.Sprint(c.MaxIndexSlots, "/", c.MaxIndexEntries), "positive counts")
	case c.DefaultTopicQueueNums < 1 || c.DefaultTopicQueueNums > 1024:
		return bad("defaultTopicQueueNums", c.DefaultTopicQueueNums, "1 to 1024")
	case c.ShortPollingTimeMills < 0:
		return bad("shortPollingTimeMills", c.ShortPollingTimeMills, "0 or more ms")
	case c.ChannelExpiredTimeout < 1000:
		return bad("channelExpiredTimeout", c.ChannelExpiredTimeout, "at least 1000 ms")
	case c.RegisterNameServerPeriod < 1000 || c.RegisterNameServerPeriod > 60_000:
		return bad("registerNameServerPeriod", c.RegisterNameServerPeriod, "1000 to 60000 ms")
	case c.ClientChannelMaxIdleTimeSeconds < 1:
		return bad("clientChannelMaxIdleTimeSeconds", c.ClientChannelMaxIdleTimeSeconds, "at least 1 s")
	case c.TransactionTimeOut < 0:
		return bad("transactionTimeOut", c.TransactionTimeOut, "0 or more ms")
	case c.TransactionCheckInterval < 100:
		return bad("transactionCheckInterval", c.TransactionCheckInterval, "at least 100 ms")
	case c.TransactionCheckMax < 1 || c.TransactionCheckMax > 1000:
		return bad("transactionCheckMax", c.TransactionCheckMax, "1 to 1000")
	case c.TransactionCheckWindow < 0 || c.TransactionCheckWindow > 1_000_000:
		return bad("transactionCheckWindow", c.TransactionCheckWindow, "0 (no window) to 1000000")
	case c.TimerMaxDelaySec < 1:
		return bad("timerMaxDelaySec", c.TimerMaxDelaySec, "at least 1 s")
	}
	if _, err := ParseDeleteWhen(c.DeleteWhen); err != nil {
		return bad("deleteWhen", c.DeleteWhen, "hours 00-23 separated by ';', e.g. 04 or 04;16")
	}
	if _, err := ParseDelayLevels(c.MessageDelayLevel); err != nil {
		return bad("messageDelayLevel", c.MessageDelayLevel, "1 to 64 durations like 1s 5m 2h separated by spaces ("+err.Error()+")")
	}
	if c.BrokerIP1 != "" && net.ParseIP(c.BrokerIP1) == nil {
		return bad("brokerIP1", c.BrokerIP1, "an IPv4 or IPv6 address")
	}
	if c.ListenHost != "" && net.ParseIP(c.ListenHost) == nil && c.ListenHost != "localhost" {
		return bad("listenHost", c.ListenHost, "an IP address or localhost")
	}
	if _, err := ParseNamesrvAddr(c.NamesrvAddr); err != nil {
		return bad("namesrvAddr", c.NamesrvAddr, "host:port entries separated by ';'")
	}
	if !c.EmbeddedNamesrv && c.NamesrvAddr == "" {
		return bad("namesrvAddr", c.NamesrvAddr, "at least one name server when embeddedNamesrv=false")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad("logLevel", c.LogLevel, "debug, info, warn or error")
	}
	return nil
}

// CommitLogDir is where the commit log lives.
func (c *Config) CommitLogDir() string {
	if c.StorePathCommitLog != "" {
		return c.StorePathCommitLog
	}
	return filepath.Join(c.StorePathRootDir, "commitlog")
}

// ParseDeleteWhen parses "04;16" into hours of the day.
func ParseDeleteWhen(s string) ([]int, error) {
	var hours []int
	for _, f := range strings.Split(s, ";") {
		f = strings.TrimSpace(f)
		h, err := strconv.Atoi(f)
		if err != nil || h < 0 || h > 23 {
			return nil, fmt.Errorf("hour %q", f)
		}
		hours = append(hours, h)
	}
	return hours, nil
}

// ParseDelayLevels parses a RocketMQ delay ladder ("1s 5s 1m 2h 1d").
func ParseDelayLevels(s string) ([]time.Duration, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 || len(fields) > 64 {
		return nil, fmt.Errorf("%d levels", len(fields))
	}
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}
	out := make([]time.Duration, 0, len(fields))
	for _, f := range fields {
		u, ok := units[f[len(f)-1]]
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 64)
		if !ok || err != nil || n <= 0 || n > 365*24*3600 {
			return nil, fmt.Errorf("level %q", f)
		}
		out = append(out, time.Duration(n)*u)
	}
	return out, nil
}

// ParseNamesrvAddr splits "a:9876;b:9876" into addresses.
func ParseNamesrvAddr(s string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' }) {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		host, port, err := net.SplitHostPort(f)
		if err != nil || host == "" {
			return nil, fmt.Errorf("address %q", f)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("address %q", f)
		}
		out = append(out, f)
	}
	return out, nil
}

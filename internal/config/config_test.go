package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/store"
)

func TestDefaultsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The broker's index geometry is the store's default (a fifth of
	// RocketMQ's slots, docs/compat.md), not a third copy that can drift.
	if c.MaxIndexSlots != store.DefaultIndexSlots || c.MaxIndexEntries != store.DefaultIndexEntries {
		t.Errorf("index defaults %d/%d, store's %d/%d", c.MaxIndexSlots, c.MaxIndexEntries, store.DefaultIndexSlots, store.DefaultIndexEntries)
	}
}

func TestParse(t *testing.T) {
	in := `
# Apache RocketMQ broker.conf
brokerClusterName = DefaultCluster
brokerName=broker-b
brokerId=0
deleteWhen=04
fileReservedTime=48
brokerRole=ASYNC_MASTER
flushDiskType=SYNC_FLUSH
listenPort: 10999
autoCreateTopicEnable false
! java comment
storePathRootDir=/tmp/x
`
	c := DefaultConfig()
	unknown, err := c.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 1 || unknown[0] != "brokerRole" {
		t.Fatalf("unknown = %v", unknown)
	}
	if c.BrokerName != "broker-b" || c.FileReservedTime != 48 || c.FlushDiskType != SyncFlush ||
		c.ListenPort != 10999 || c.AutoCreateTopicEnable || c.StorePathRootDir != "/tmp/x" {
		t.Fatalf("parsed %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseBadValue(t *testing.T) {
	c := DefaultConfig()
	_, err := c.Parse(strings.NewReader("a=1\nlistenPort=abc\n"))
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Key != "listenPort" || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		key, value string
	}{
		{"listenPort", "70000"},
		{"flushDiskType", "SOMETIMES"},
		{"maxMessageSize", "0"},
		{"deleteWhen", "25"},
		{"messageDelayLevel", "1s 5x"},
		{"brokerIP1", "not-an-ip"},
		{"namesrvAddr", "host-without-port"},
		{"diskMaxUsedSpaceRatio", "99"},
		{"mappedFileSizeConsumeQueue", "21"},
		{"transactionCheckMax", "0"},
		{"transactionCheckWindow", "-1"},
		{"brokerName", "a b"},
		{"logLevel", "loud"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			c := DefaultConfig()
			if err := c.Set(tt.key, tt.value); err != nil {
				t.Fatalf("set: %v", err)
			}
			err := c.Validate()
			var ve *ValueError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) || ve.Key == "" || ve.Allowed == "" {
				t.Fatalf("Validate() = %v", err)
			}
			if !strings.Contains(err.Error(), tt.value) {
				t.Fatalf("error %q does not name the value", err)
			}
		})
	}
}

func TestSetGetAllKeys(t *testing.T) {
	c := DefaultConfig()
	for _, k := range Keys() {
		v, ok := c.Get(k.Name)
		if !ok || v != k.Default {
			t.Fatalf("%s: Get = %q, default %q", k.Name, v, k.Default)
		}
		if err := c.Set(k.Name, v); err != nil {
			t.Fatalf("%s: Set(%q): %v", k.Name, v, err)
		}
		if k.Help == "" {
			t.Errorf("%s has no help", k.Name)
		}
	}
	if err := c.Set("nope", "1"); err == nil {
		t.Fatal("unknown key accepted")
	}
}

func TestParseDelayLevels(t *testing.T) {
	d, err := ParseDelayLevels(DefaultMessageDelayLevel)
	if err != nil || len(d) != 18 || d[0] != time.Second || d[17] != 2*time.Hour {
		t.Fatalf("%v %v", d, err)
	}
}

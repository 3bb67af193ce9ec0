package namesrv

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func reg(name, addr string, id int64, topics ...string) Registration {
	tc := map[string]TopicConfig{}
	for _, t := range topics {
		tc[t] = TopicConfig{TopicName: t, ReadQueueNums: 4, WriteQueueNums: 4, Perm: PermRead | PermWrite}
	}
	return Registration{Cluster: "C", BrokerName: name, BrokerAddr: addr, BrokerID: id, Topics: tc}
}

func TestRegistryRoute(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r := NewRegistry(clk.now)
	r.Register(reg("broker-b", "10.0.0.2:10911", 0, "T", "U"))
	r.Register(reg("broker-a", "10.0.0.1:10911", 0, "T"))
	r.Register(reg("broker-a", "10.0.0.3:10911", 1)) // a slave: no topics
	rd, ok := r.Route("T")
	if !ok || len(rd.QueueDatas) != 2 || rd.QueueDatas[0].BrokerName != "broker-a" {
		t.Fatalf("route T: %+v %v", rd, ok)
	}
	if got := rd.BrokerDatas[0].BrokerAddrs; got[0] != "10.0.0.1:10911" || got[1] != "10.0.0.3:10911" {
		t.Fatalf("broker-a addrs %v", got)
	}
	b, _ := json.Marshal(rd)
	if strings.Contains(string(b), " ") || !strings.Contains(string(b), `"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.3:10911"}`) {
		t.Fatalf("route JSON must be compact with string ids: %s", b)
	}
	if _, ok := r.Route("nope"); ok {
		t.Fatal("route for unknown topic")
	}
	// broker-b re-registers without U: U disappears.
	r.Register(reg("broker-b", "10.0.0.2:10911", 0, "T"))
	if _, ok := r.Route("U"); ok {
		t.Fatal("U still routed")
	}
	if got := r.Topics(); len(got) != 1 || got[0] != "T" {
		t.Fatalf("topics %v", got)
	}
	ci := r.ClusterInfo()
	if len(ci.ClusterAddrTable["C"]) != 2 || len(ci.BrokerAddrTable) != 2 {
		t.Fatalf("cluster info %+v", ci)
	}
}

func TestRegistryExpireAndUnregister(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r := NewRegistry(clk.now)
	r.Register(reg("broker-a", "10.0.0.1:10911", 0, "T"))
	clk.t = clk.t.Add(60 * time.Second)
	r.Register(reg("broker-b", "10.0.0.2:10911", 0, "T"))
	clk.t = clk.t.Add(61 * time.Second)
	if gone := r.Expire(); len(gone) != 1 || gone[0] != "10.0.0.1:10911" {
		t.Fatalf("expired %v", gone)
	}
	rd, ok := r.Route("T")
	if !ok || len(rd.BrokerDatas) != 1 || rd.BrokerDatas[0].BrokerName != "broker-b" {
		t.Fatalf("after expiry: %+v", rd)
	}
	r.Unregister("C", "broker-b", "10.0.0.2:10911", 0)
	if _, ok := r.Route("T"); ok {
		t.Fatal("route survives its last broker")
	}
	if ci := r.ClusterInfo(); len(ci.ClusterAddrTable) != 0 {
		t.Fatalf("cluster left behind: %+v", ci)
	}
}

func TestRegistryDeleteTopic(t *testing.T) {
	r := NewRegistry(nil)
	r.Register(reg("broker-a", "1.1.1.1:1", 0, "T"))
	if !r.DeleteTopic("T") || r.DeleteTopic("T") {
		t.Fatal("DeleteTopic")
	}
	if _, ok := r.Route("T"); ok {
		t.Fatal("deleted topic routed")
	}
}

package namesrv

import (
	"sort"
	"sync"
	"time"
)

// Registration is one REGISTER_BROKER call.
type Registration struct {
	Cluster    string
	BrokerName string
	BrokerAddr string
	BrokerID   int64
	Topics     map[string]TopicConfig
	// Timeout is how long the registration lives without a renewal
	// (RocketMQ: heartbeatTimeoutMillis, default 120 s).
	Timeout time.Duration
}

type liveBroker struct {
	cluster, name string
	id            int64
	lastSeen      time.Time
	timeout       time.Duration
}

// Registry is the name server's route table. It is safe for concurrent use:
// one RWMutex guards all of it (routes are read every 30 s per client and
// topic, and written every 30 s per broker, so contention is negligible).
type Registry struct {
	mu       sync.RWMutex
	brokers  map[string]*BrokerData          // brokerName -> members
	clusters map[string]map[string]struct{}  // cluster -> brokerNames
	topics   map[string]map[string]QueueData // topic -> brokerName -> queues
	live     map[string]*liveBroker          // brokerAddr -> liveness
	now      func() time.Time
}

// NewRegistry returns an empty registry. now may be nil (time.Now).
func NewRegistry(now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{
		brokers:  map[string]*BrokerData{},
		clusters: map[string]map[string]struct{}{},
		topics:   map[string]map[string]QueueData{},
		live:     map[string]*liveBroker{},
		now:      now,
	}
}

// Register records or renews a broker and replaces the topics it serves
// (a master's registration is authoritative for its broker name).
func (r *Registry) Register(reg Registration) {
	if reg.Timeout <= 0 {
		reg.Timeout = 120 * time.Second
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clusters[reg.Cluster] == nil {
		r.clusters[reg.Cluster] = map[string]struct{}{}
	}
	r.clusters[reg.Cluster][reg.BrokerName] = struct{}{}
	bd := r.brokers[reg.BrokerName]
	if bd == nil {
		bd = &BrokerData{Cluster: reg.Cluster, BrokerName: reg.BrokerName, BrokerAddrs: map[int64]string{}}
		r.brokers[reg.BrokerName] = bd
	}
	// An address moving to another id replaces the old entry.
	for id, addr := range bd.BrokerAddrs {
		if addr == reg.BrokerAddr && id != reg.BrokerID {
			delete(bd.BrokerAddrs, id)
		}
	}
	bd.BrokerAddrs[reg.BrokerID] = reg.BrokerAddr
	r.live[reg.BrokerAddr] = &liveBroker{cluster: reg.Cluster, name: reg.BrokerName, id: reg.BrokerID, lastSeen: r.now(), timeout: reg.Timeout}
	if reg.BrokerID != 0 || reg.Topics == nil {
		return
	}
	for topic, qs := range r.topics {
		if _, ok := reg.Topics[topic]; !ok {
			delete(qs, reg.BrokerName)
			if len(qs) == 0 {
				delete(r.topics, topic)
			}
		}
	}
	for name, tc := range reg.Topics {
		qs := r.topics[name]
		if qs == nil {
			qs = map[string]QueueData{}
			r.topics[name] = qs
		}
		qs[reg.BrokerName] = QueueData{
			BrokerName: reg.BrokerName, ReadQueueNums: tc.ReadQueueNums, WriteQueueNums: tc.WriteQueueNums,
			Perm: tc.Perm, TopicSysFlag: tc.TopicSysFlag,
		}
	}
}

// Unregister removes one broker member. When a broker name loses its last
// member its topics' queues go with it.
func (r *Registry) Unregister(cluster, brokerName, brokerAddr string, brokerID int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(brokerAddr, brokerName, brokerID)
}

func (r *Registry) removeLocked(addr, name string, id int64) {
	delete(r.live, addr)
	bd := r.brokers[name]
	if bd == nil {
		return
	}
	if bd.BrokerAddrs[id] == addr {
		delete(bd.BrokerAddrs, id)
	}
	if len(bd.BrokerAddrs) > 0 {
		return
	}
	delete(r.brokers, name)
	if c := r.clusters[bd.Cluster]; c != nil {
		delete(c, name)
		if len(c) == 0 {
			delete(r.clusters, bd.Cluster)
		}
	}
	for topic, qs := range r.topics {
		delete(qs, name)
		if len(qs) == 0 {
			delete(r.topics, topic)
		}
	}
}

// Expire removes brokers whose registration was not renewed in time and
// returns their addresses.
func (r *Registry) Expire() []string {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []string
	for addr, lb := range r.live {
		if now.Sub(lb.lastSeen) > lb.timeout {
			gone = append(gone, addr)
			r.removeLocked(addr, lb.name, lb.id)
		}
	}
	sort.Strings(gone)
	return gone
}

// Route returns the route of topic, or false when no live broker serves it.
// Brokers and queues are sorted by broker name.
func (r *Registry) Route(topic string) (TopicRouteData, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	qs := r.topics[topic]
	if len(qs) == 0 {
		return TopicRouteData{}, false
	}
	rd := TopicRouteData{QueueDatas: make([]QueueData, 0, len(qs)), BrokerDatas: []BrokerData{}, FilterServerTable: map[string][]string{}}
	for name, q := range qs {
		bd := r.brokers[name]
		if bd == nil {
			continue
		}
		rd.QueueDatas = append(rd.QueueDatas, q)
		rd.BrokerDatas = append(rd.BrokerDatas, copyBroker(bd))
	}
	if len(rd.BrokerDatas) == 0 {
		return TopicRouteData{}, false
	}
	sort.Slice(rd.QueueDatas, func(i, j int) bool { return rd.QueueDatas[i].BrokerName < rd.QueueDatas[j].BrokerName })
	sort.Slice(rd.BrokerDatas, func(i, j int) bool { return rd.BrokerDatas[i].BrokerName < rd.BrokerDatas[j].BrokerName })
	return rd, true
}

func copyBroker(bd *BrokerData) BrokerData {
	c := BrokerData{Cluster: bd.Cluster, BrokerName: bd.BrokerName, BrokerAddrs: make(map[int64]string, len(bd.BrokerAddrs))}
	for id, a := range bd.BrokerAddrs {
		c.BrokerAddrs[id] = a
	}
	return c
}

// ClusterInfo returns every broker and cluster.
func (r *Registry) ClusterInfo() ClusterInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ci := ClusterInfo{BrokerAddrTable: map[string]BrokerData{}, ClusterAddrTable: map[string][]string{}}
	for name, bd := range r.brokers {
		ci.BrokerAddrTable[name] = copyBroker(bd)
	}
	for c, names := range r.clusters {
		l := make([]string, 0, len(names))
		for n := range names {
			l = append(l, n)
		}
		sort.Strings(l)
		ci.ClusterAddrTable[c] = l
	}
	return ci
}

// Topics lists every routed topic, sorted.
func (r *Registry) Topics() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.topics))
	for t := range r.topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// DeleteTopic forgets a topic's route (DELETE_TOPIC_IN_NAMESRV). A broker
// that still has the topic registers it again on its next heartbeat.
func (r *Registry) DeleteTopic(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.topics[topic]
	delete(r.topics, topic)
	return ok
}

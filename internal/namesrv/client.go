package namesrv

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strconv"

	"github.com/txmq/txmq/internal/remoting"
)

// Invoker sends a request to an address: *remoting.Pool satisfies it.
type Invoker interface {
	Invoke(ctx context.Context, addr string, req *remoting.Command) (*remoting.Command, error)
}

// RegisterBroker sends one REGISTER_BROKER to the name server at addr.
func RegisterBroker(ctx context.Context, inv Invoker, addr string, reg Registration, version DataVersion) error {
	body, err := json.Marshal(RegisterBrokerBody{
		TopicConfigSerializeWrapper: TopicConfigSerializeWrapper{TopicConfigTable: reg.Topics, DataVersion: version},
		FilterServerList:            []string{},
	})
	if err != nil {
		return fmt.Errorf("register broker: %w", err)
	}
	req := remoting.NewRequest(remoting.ReqRegisterBroker, map[string]string{
		"brokerName":             reg.BrokerName,
		"brokerAddr":             reg.BrokerAddr,
		"clusterName":            reg.Cluster,
		"haServerAddr":           "",
		"brokerId":               strconv.FormatInt(reg.BrokerID, 10),
		"heartbeatTimeoutMillis": strconv.FormatInt(reg.Timeout.Milliseconds(), 10),
		"enableActingMaster":     "false",
		"compressed":             "false",
		"bodyCrc32":              strconv.FormatInt(int64(int32(crc32.ChecksumIEEE(body))), 10),
	})
	req.Body = body
	resp, err := inv.Invoke(ctx, addr, req)
	if err != nil {
		return fmt.Errorf("register broker with %s: %w", addr, err)
	}
	if resp.Code != remoting.RespSuccess {
		return fmt.Errorf("register broker with %s: code %d: %s", addr, resp.Code, resp.Remark)
	}
	return nil
}

// UnregisterBroker sends one UNREGISTER_BROKER to the name server at addr.
func UnregisterBroker(ctx context.Context, inv Invoker, addr string, reg Registration) error {
	req := remoting.NewRequest(remoting.ReqUnregisterBroker, map[string]string{
		"brokerName":  reg.BrokerName,
		"brokerAddr":  reg.BrokerAddr,
		"clusterName": reg.Cluster,
		"brokerId":    strconv.FormatInt(reg.BrokerID, 10),
	})
	resp, err := inv.Invoke(ctx, addr, req)
	if err != nil {
		return fmt.Errorf("unregister broker from %s: %w", addr, err)
	}
	if resp.Code != remoting.RespSuccess {
		return fmt.Errorf("unregister broker from %s: code %d: %s", addr, resp.Code, resp.Remark)
	}
	return nil
}

// ErrTopicNotExist is returned by GetRoute for a topic no broker serves.
var ErrTopicNotExist = fmt.Errorf("topic does not exist")

// GetRoute asks the name server at addr for a topic's route.
func GetRoute(ctx context.Context, inv Invoker, addr, topic string) (TopicRouteData, error) {
	var rd TopicRouteData
	resp, err := inv.Invoke(ctx, addr, remoting.NewRequest(remoting.ReqGetRouteInfoByTopic, map[string]string{"topic": topic}))
	if err != nil {
		return rd, fmt.Errorf("route of %s from %s: %w", topic, addr, err)
	}
	switch resp.Code {
	case remoting.RespSuccess:
	case remoting.RespTopicNotExist:
		return rd, fmt.Errorf("route of %s: %w", topic, ErrTopicNotExist)
	default:
		return rd, fmt.Errorf("route of %s from %s: code %d: %s", topic, addr, resp.Code, resp.Remark)
	}
	if err := json.Unmarshal(resp.Body, &rd); err != nil {
		return rd, fmt.Errorf("route of %s from %s: %w", topic, addr, err)
	}
	return rd, nil
}

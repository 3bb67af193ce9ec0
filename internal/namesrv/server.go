package namesrv

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/txmq/txmq/internal/remoting"
)

// Config configures a name server.
type Config struct {
	// Addr is the listen address; "127.0.0.1:0" picks a port.
	Addr string
	// ScanInterval is how often expired brokers are removed (default 5 s).
	ScanInterval time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Server is a name server: a Registry served over the remoting protocol.
type Server struct {
	cfg      Config
	log      *slog.Logger
	reg      *Registry
	srv      *remoting.Server
	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// New binds the listener and installs the handlers; Start serves.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = 5 * time.Second
	}
	log := cfg.Logger.With("component", "namesrv")
	srv, err := remoting.NewServer(remoting.ServerConfig{Addr: cfg.Addr, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("namesrv: %w", err)
	}
	s := &Server{cfg: cfg, log: log, reg: NewRegistry(cfg.Now), srv: srv, stop: make(chan struct{})}
	srv.Handle(remoting.ReqRegisterBroker, s.registerBroker)
	srv.Handle(remoting.ReqUnregisterBroker, s.unregisterBroker)
	srv.Handle(remoting.ReqGetRouteInfoByTopic, s.getRoute)
	srv.Handle(remoting.ReqGetBrokerClusterInfo, s.clusterInfo)
	srv.Handle(remoting.ReqGetAllTopicListFromNameServer, s.topicList)
	srv.Handle(remoting.ReqDeleteTopicInNamesrv, s.deleteTopic)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.srv.Addr() }

// Registry exposes the route table (for tests and the embedded case).
func (s *Server) Registry() *Registry { return s.reg }

// Start serves requests and starts the expiry scan.
func (s *Server) Start() error {
	if err := s.srv.Start(); err != nil {
		return fmt.Errorf("namesrv: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.cfg.ScanInterval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				for _, addr := range s.reg.Expire() {
					s.log.Warn("broker expired: no registration within its timeout", "brokerAddr", addr)
				}
			}
		}
	}()
	s.log.Info("name server listening", "addr", s.Addr().String())
	return nil
}

// Shutdown stops the server and waits for its goroutines. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	err := s.srv.Shutdown(ctx)
	s.wg.Wait()
	return err
}

func (s *Server) registerBroker(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	name, err := req.ExtString("brokerName")
	if err != nil {
		return nil, remoting.Errorf(remoting.RespSystemError, "register broker: %v", err)
	}
	addr, err := req.ExtString("brokerAddr")
	if err != nil {
		return nil, remoting.Errorf(remoting.RespSystemError, "register broker: %v", err)
	}
	id, err := req.ExtInt64Or("brokerId", 0)
	if err != nil {
		return nil, remoting.Errorf(remoting.RespSystemError, "register broker: %v", err)
	}
	timeoutMs, err := req.ExtInt64Or("heartbeatTimeoutMillis", 120_000)
	if err != nil {
		return nil, remoting.Errorf(remoting.RespSystemError, "register broker: %v", err)
	}
	if req.ExtBoolOr("compressed", false) {
		return nil, remoting.Errorf(remoting.RespSystemError, "register broker: compressed bodies are not supported; send compressed=false")
	}
	var body RegisterBrokerBody
	if len(req.Body) > 0 {
		if err := json.Unmarshal(req.Body, &body); err != nil {
			return nil, remoting.Errorf(remoting.RespSystemError, "register broker: bad body: %v", err)
		}
	}
	topics := body.TopicConfigSerializeWrapper.TopicConfigTable
	if topics == nil {
		topics = map[string]TopicConfig{}
	}
	s.reg.Register(Registration{
		Cluster: req.ExtStringOr("clusterName", "DefaultCluster"), BrokerName: name, BrokerAddr: addr, BrokerID: id,
		Topics: topics, Timeout: time.Duration(timeoutMs) * time.Millisecond,
	})
	resp := req.Reply(remoting.RespSuccess, "")
	resp.SetExt("haServerAddr", "").SetExt("masterAddr", "")
	return resp, nil
}

func (s *Server) unregisterBroker(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	id, err := req.ExtInt64Or("brokerId", 0)
	if err != nil {
		return nil, remoting.Errorf(remoting.RespSystemError, "unregister broker: %v", err)
	}
	s.reg.Unregister(req.ExtStringOr("clusterName", ""), req.ExtStringOr("brokerName", ""), req.ExtStringOr("brokerAddr", ""), id)
	return req.Reply(remoting.RespSuccess, ""), nil
}

func (s *Server) getRoute(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	topic, err := req.ExtString("topic")
	if err != nil {
		return nil, remoting.Errorf(remoting.RespSystemError, "get route: %v", err)
	}
	rd, ok := s.reg.Route(topic)
	if !ok {
		return req.Reply(remoting.RespTopicNotExist, "No topic route info in name server for the topic: "+topic), nil
	}
	return jsonReply(req, rd)
}

func (s *Server) clusterInfo(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	return jsonReply(req, s.reg.ClusterInfo())
}

func (s *Server) topicList(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	return jsonReply(req, TopicList{TopicList: s.reg.Topics()})
}

func (s *Server) deleteTopic(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	topic, err := req.ExtString("topic")
	if err != nil {
		return nil, remoting.Errorf(remoting.RespSystemError, "delete topic: %v", err)
	}
	s.reg.DeleteTopic(topic)
	return req.Reply(remoting.RespSuccess, ""), nil
}

func jsonReply(req *remoting.Command, v any) (*remoting.Command, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode reply: %w", err)
	}
	resp := req.Reply(remoting.RespSuccess, "")
	resp.Body = b
	return resp, nil
}

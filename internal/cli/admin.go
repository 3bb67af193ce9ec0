package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/namesrv"
	"github.com/txmq/txmq/internal/remoting"
)

// adminClient talks to the name server and the brokers it names.
type adminClient struct {
	namesrv string
	timeout time.Duration
	pool    *remoting.Pool
}

func (a *adminClient) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, a.timeout)
}

// call sends req to addr and fails unless the answer is SUCCESS.
func (a *adminClient) call(ctx context.Context, addr string, req *remoting.Command) (*remoting.Command, error) {
	c, cancel := a.ctx(ctx)
	defer cancel()
	resp, err := a.pool.Invoke(c, addr, req)
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.RespSuccess {
		return resp, fmt.Errorf("%s from %s: %s (code %d)", remoting.RequestCodeName(req.Code), addr, resp.Remark, resp.Code)
	}
	return resp, nil
}

// masters returns the master address of every broker the name server knows.
func (a *adminClient) masters(ctx context.Context) (map[string]string, error) {
	resp, err := a.call(ctx, a.namesrv, remoting.NewRequest(remoting.ReqGetBrokerClusterInfo, nil))
	if err != nil {
		return nil, err
	}
	var ci namesrv.ClusterInfo
	if err := json.Unmarshal(resp.Body, &ci); err != nil {
		return nil, fmt.Errorf("cluster info: %w", err)
	}
	out := map[string]string{}
	for name, bd := range ci.BrokerAddrTable {
		if addr, ok := bd.BrokerAddrs[0]; ok {
			out[name] = addr
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("name server %s knows no broker", a.namesrv)
	}
	return out, nil
}

// topicMasters returns the master addresses serving topic.
func (a *adminClient) topicMasters(ctx context.Context, topic string) (map[string]string, error) {
	c, cancel := a.ctx(ctx)
	defer cancel()
	rd, err := namesrv.GetRoute(c, a.pool, a.namesrv, topic)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, bd := range rd.BrokerDatas {
		if addr, ok := bd.BrokerAddrs[0]; ok {
			out[bd.BrokerName] = addr
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func newAdminCommand() *cobra.Command {
	a := &adminClient{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operate a running txmq (or Apache RocketMQ) cluster over the remoting protocol",
		Long: `Operator commands, like RocketMQ's mqadmin. They find brokers through the name
server (--namesrv, or $NAMESRV_ADDR) and talk to them over the remoting protocol,
so they work against a remote broker.`,
		PersistentPreRun: func(*cobra.Command, []string) {
			a.pool = remoting.NewPool(remoting.ClientConfig{})
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if a.pool != nil {
				a.pool.Close()
			}
		},
	}
	def := os.Getenv("NAMESRV_ADDR")
	if def == "" {
		def = "127.0.0.1:9876"
	}
	cmd.PersistentFlags().StringVarP(&a.namesrv, "namesrv", "n", def, "name server address (host:port)")
	cmd.PersistentFlags().DurationVar(&a.timeout, "timeout", 5*time.Second, "timeout of each request")
	cmd.AddCommand(newAdminTopicCommand(a), newAdminGroupCommand(a), newAdminMessageCommand(a), newAdminTxCommand(a), newAdminDLQCommand(a))
	return cmd
}

func newAdminTopicCommand(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "topic", Short: "Create, list, delete and inspect topics"}
	var queues, perm int
	var brokerAddr string
	create := &cobra.Command{
		Use:   "create <topic>",
		Short: "Create or update a topic on every master broker (or on --broker)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			topic := args[0]
			if err := message.ValidateTopic(topic); err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			if queues < 1 || queues > 1024 {
				return fmt.Errorf("%w: --queues %d: want 1 to 1024", errUsage, queues)
			}
			targets := map[string]string{"": brokerAddr}
			if brokerAddr == "" {
				var err error
				if targets, err = a.masters(c.Context()); err != nil {
					return err
				}
			}
			for _, name := range sortedKeys(targets) {
				req := remoting.NewRequest(remoting.ReqUpdateAndCreateTopic, map[string]string{
					"topic": topic, "defaultTopic": message.DefaultTopic,
					"readQueueNums": strconv.Itoa(queues), "writeQueueNums": strconv.Itoa(queues),
					"perm": strconv.Itoa(perm), "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false",
				})
				if _, err := a.call(c.Context(), targets[name], req); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "created %s with %d queues on %s\n", topic, queues, targets[name])
			}
			return nil
		},
	}
	create.Flags().IntVar(&queues, "queues", 8, "read and write queue count")
	create.Flags().IntVar(&perm, "perm", namesrv.PermRead|namesrv.PermWrite, "permission bits: 4 read, 2 write")
	create.Flags().StringVar(&brokerAddr, "broker", "", "create on this broker address only")

	list := &cobra.Command{
		Use:   "list",
		Short: "List every topic the name server routes",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			resp, err := a.call(c.Context(), a.namesrv, remoting.NewRequest(remoting.ReqGetAllTopicListFromNameServer, nil))
			if err != nil {
				return err
			}
			var tl namesrv.TopicList
			if err := json.Unmarshal(resp.Body, &tl); err != nil {
				return fmt.Errorf("topic list: %w", err)
			}
			for _, t := range tl.TopicList {
				fmt.Fprintln(c.OutOrStdout(), t)
			}
			return nil
		},
	}
	route := &cobra.Command{
		Use:   "route <topic>",
		Short: "Print a topic's route as the name server gives it to clients",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ctx, cancel := a.ctx(c.Context())
			defer cancel()
			rd, err := namesrv.GetRoute(ctx, a.pool, a.namesrv, args[0])
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(rd, "", "  ")
			fmt.Fprintln(c.OutOrStdout(), string(b))
			return nil
		},
	}
	del := &cobra.Command{
		Use:   "delete <topic>",
		Short: "Delete a topic from every broker serving it and from the name server",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			topic := args[0]
			targets, err := a.topicMasters(c.Context(), topic)
			if err != nil {
				return err
			}
			for _, name := range sortedKeys(targets) {
				if _, err := a.call(c.Context(), targets[name], remoting.NewRequest(remoting.ReqDeleteTopicInBroker, map[string]string{"topic": topic})); err != nil {
					return err
				}
			}
			if _, err := a.call(c.Context(), a.namesrv, remoting.NewRequest(remoting.ReqDeleteTopicInNamesrv, map[string]string{"topic": topic})); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "deleted %s from %d broker(s)\n", topic, len(targets))
			return nil
		},
	}
	cmd.AddCommand(create, list, route, del, newAdminTopicStatsCommand(a))
	return cmd
}

func newAdminMessageCommand(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "message", Short: "Look messages up by id or key"}
	get := &cobra.Command{
		Use:   "get <offsetMsgId>",
		Short: "Show a message by its offset message id (the send result's OffsetMsgID)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			host, off, err := message.ParseOffsetMessageID(args[0])
			if err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			resp, err := a.call(c.Context(), host.String(), remoting.NewRequest(remoting.ReqViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}))
			if err != nil {
				return err
			}
			msgs, err := message.DecodeAll(resp.Body)
			if err != nil {
				return fmt.Errorf("decode message: %w", err)
			}
			for _, m := range msgs {
				printMessage(c, m)
			}
			return nil
		},
	}
	var maxNum int
	byKey := &cobra.Command{
		Use:   "by-key <topic> <key>",
		Short: "Find messages of a topic by key (KEYS) or unique key (the client's message id)",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			targets, err := a.topicMasters(c.Context(), args[0])
			if err != nil {
				return err
			}
			found := 0
			for _, name := range sortedKeys(targets) {
				req := remoting.NewRequest(remoting.ReqQueryMessage, map[string]string{
					"topic": args[0], "key": args[1], "maxNum": strconv.Itoa(maxNum),
					"beginTimestamp": "0", "endTimestamp": strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10),
				})
				c2, cancel := a.ctx(c.Context())
				resp, err := a.pool.Invoke(c2, targets[name], req)
				cancel()
				if err != nil {
					return err
				}
				if resp.Code == remoting.RespQueryNotFound {
					continue
				}
				if resp.Code != remoting.RespSuccess {
					return fmt.Errorf("query %s: %s (code %d)", targets[name], resp.Remark, resp.Code)
				}
				msgs, err := message.DecodeAll(resp.Body)
				if err != nil {
					return fmt.Errorf("decode messages: %w", err)
				}
				for _, m := range msgs {
					printMessage(c, m)
					found++
				}
			}
			if found == 0 {
				return fmt.Errorf("no message of %s has key %q", args[0], args[1])
			}
			return nil
		},
	}
	byKey.Flags().IntVar(&maxNum, "max", 32, "most messages to return per broker")
	cmd.AddCommand(get, byKey)
	return cmd
}

func printMessage(c *cobra.Command, m *message.Ext) {
	w := c.OutOrStdout()
	props := message.ParseProperties(m.Properties)
	fmt.Fprintf(w, "OffsetMsgId:     %s\n", message.OffsetMessageID(m.StoreHost, m.CommitLogOffset))
	fmt.Fprintf(w, "MsgId:           %s\n", props[message.PropUniqClientMessageID])
	fmt.Fprintf(w, "Topic:           %s\n", m.Topic)
	fmt.Fprintf(w, "Tags:            %s\n", props[message.PropTags])
	fmt.Fprintf(w, "Keys:            %s\n", props[message.PropKeys])
	fmt.Fprintf(w, "Queue:           %d (offset %d)\n", m.QueueID, m.QueueOffset)
	fmt.Fprintf(w, "CommitLogOffset: %d\n", m.CommitLogOffset)
	fmt.Fprintf(w, "BornTimestamp:   %s (%s)\n", time.UnixMilli(m.BornTimestamp).UTC().Format(time.RFC3339Nano), m.BornHost)
	fmt.Fprintf(w, "StoreTimestamp:  %s (%s)\n", time.UnixMilli(m.StoreTimestamp).UTC().Format(time.RFC3339Nano), m.StoreHost)
	fmt.Fprintf(w, "ReconsumeTimes:  %d\n", m.ReconsumeTimes)
	keys := sortedKeys(props)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%s ", k, props[k])
	}
	fmt.Fprintf(w, "Properties:      %s\n", strings.TrimSpace(sb.String()))
	body := m.Body
	if m.SysFlag&message.FlagCompressed != 0 {
		fmt.Fprintf(w, "Body:            %d bytes (compressed)\n\n", len(body))
		return
	}
	fmt.Fprintf(w, "Body:            %q\n\n", truncate(body, 256))
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

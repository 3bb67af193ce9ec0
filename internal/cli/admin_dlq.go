package cli

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/namesrv"
	"github.com/txmq/txmq/internal/remoting"
)

// dlqToolsGroup is the consumer group the DLQ commands pull with (Java's
// tools use TOOLS_CONSUMER too); they never commit an offset.
const dlqToolsGroup = "TOOLS_CONSUMER"

// dlqMessage is one message of a dead-letter queue and where it is.
type dlqMessage struct {
	broker, addr string
	m            *message.Ext
}

// readDLQ pulls every message of %DLQ%<group> from every broker that
// serves it, oldest first per queue, at most max (0: all).
func (a *adminClient) readDLQ(ctx context.Context, group string, max int) ([]dlqMessage, error) {
	topic := message.DLQTopic(group)
	c, cancel := a.ctx(ctx)
	rd, err := namesrv.GetRoute(c, a.pool, a.namesrv, topic)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("dead-letter queue of group %s: %w (no message of the group has been dead-lettered yet?)", group, err)
	}
	queues := map[string]int{}
	for _, q := range rd.QueueDatas {
		queues[q.BrokerName] = q.ReadQueueNums
	}
	var out []dlqMessage
	for _, bd := range rd.BrokerDatas {
		addr, ok := bd.BrokerAddrs[0]
		if !ok {
			continue
		}
		for qid := range queues[bd.BrokerName] {
			off := int64(0)
			for max <= 0 || len(out) < max {
				req := remoting.NewRequest(remoting.ReqPullMessage, map[string]string{
					"consumerGroup": dlqToolsGroup, "topic": topic, "queueId": strconv.Itoa(qid),
					"queueOffset": strconv.FormatInt(off, 10), "maxMsgNums": "32", "sysFlag": "0",
					"commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0",
					"expressionType": "TAG", "bname": bd.BrokerName,
				})
				c, cancel := a.ctx(ctx)
				resp, err := a.pool.Invoke(c, addr, req)
				cancel()
				if err != nil {
					return nil, fmt.Errorf("pull %s/%d from %s: %w", topic, qid, addr, err)
				}
				next, _ := resp.ExtInt64("nextBeginOffset")
				switch resp.Code {
				case remoting.RespSuccess:
					msgs, err := message.DecodeAll(resp.Body)
					if err != nil {
						return nil, fmt.Errorf("decode %s/%d from %s: %w", topic, qid, addr, err)
					}
					for _, m := range msgs {
						out = append(out, dlqMessage{broker: bd.BrokerName, addr: addr, m: m})
					}
				case remoting.RespPullOffsetMoved, remoting.RespPullRetryImmediately:
				case remoting.RespPullNotFound:
					next = off
				default:
					return nil, fmt.Errorf("pull %s/%d from %s: %s (code %d)", topic, qid, addr, resp.Remark, resp.Code)
				}
				if next <= off {
					break
				}
				off = next
			}
		}
	}
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out, nil
}

// dlqID is how a DLQ message is named: its client message id.
func dlqID(m *message.Ext) string {
	if id, ok := message.Property(m.Properties, message.PropUniqClientMessageID); ok && id != "" {
		return id
	}
	return message.OffsetMessageID(m.StoreHost, m.CommitLogOffset)
}

func newAdminDLQCommand(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "dlq", Short: "List a consumer group's dead-letter queue and send its messages back"}
	var max int
	list := &cobra.Command{
		Use:   "list <group>",
		Short: "List the messages of %DLQ%<group>: queue offset, message id, original topic, reconsume times, store time, body",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			msgs, err := a.readDLQ(c.Context(), args[0], max)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "BROKER\tQUEUE\tOFFSET\tMSG_ID\tORIGIN_TOPIC\tRECONSUME_TIMES\tSTORE_TIME\tOFFSET_MSG_ID\tBODY")
			for _, d := range msgs {
				m := d.m
				origin, _ := message.Property(m.Properties, message.PropRetryTopic)
				body := fmt.Sprintf("%q", truncate(m.Body, 48))
				if m.SysFlag&message.FlagCompressed != 0 {
					body = fmt.Sprintf("(%d bytes, compressed)", len(m.Body))
				}
				fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", d.broker, m.QueueID, m.QueueOffset, dlqID(m), origin,
					m.ReconsumeTimes, time.UnixMilli(m.StoreTimestamp).UTC().Format(time.RFC3339), message.OffsetMessageID(m.StoreHost, m.CommitLogOffset), body)
			}
			fmt.Fprintf(w, "%d message(s)\n", len(msgs))
			return w.Flush()
		},
	}
	list.Flags().IntVar(&max, "max", 1000, "most messages to list (0: all)")

	var toTopic string
	resend := &cobra.Command{
		Use:   "resend <group> <msgId|offset>",
		Short: "Send a dead-lettered message back to its original topic (by message id, offset message id, or DLQ queue offset)",
		Long: `Finds the message in %DLQ%<group> by its message id (UNIQ_KEY), its
ORIGIN_MESSAGE_ID, its offset message id, or its queue offset in the DLQ, and
sends a copy to its original topic (RETRY_TOPIC, or --topic) with reconsume
times 0, keeping its message id, keys, tags and body. The DLQ keeps its copy.`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			group, id := args[0], args[1]
			msgs, err := a.readDLQ(c.Context(), group, 0)
			if err != nil {
				return err
			}
			qoff, numErr := strconv.ParseInt(id, 10, 64)
			var found []dlqMessage
			for _, d := range msgs {
				m := d.m
				origin, _ := message.Property(m.Properties, message.PropOriginMessageID)
				if (numErr == nil && m.QueueOffset == qoff) || dlqID(m) == id || origin == id ||
					message.OffsetMessageID(m.StoreHost, m.CommitLogOffset) == id {
					found = append(found, d)
				}
			}
			switch {
			case len(found) == 0:
				return fmt.Errorf("%w: no message of %s has id or offset %q (see txmq admin dlq list %s)", errUsage, message.DLQTopic(group), id, group)
			case len(found) > 1:
				return fmt.Errorf("%w: %d messages of %s match %q; name one by its offset message id", errUsage, len(found), message.DLQTopic(group), id)
			}
			return a.resendDLQ(c, found[0].m, toTopic)
		},
	}
	resend.Flags().StringVar(&toTopic, "topic", "", "send to this topic instead of the original one")
	cmd.AddCommand(list, resend)
	return cmd
}

// resendDLQ sends a copy of m to its original topic.
func (a *adminClient) resendDLQ(c *cobra.Command, m *message.Ext, topic string) error {
	if topic == "" {
		topic, _ = message.Property(m.Properties, message.PropRetryTopic)
	}
	if topic == "" {
		return fmt.Errorf("%w: the message has no RETRY_TOPIC property; say where to send it with --topic", errUsage)
	}
	targets, err := a.topicMasters(c.Context(), topic)
	if err != nil {
		return fmt.Errorf("route of %s: %w", topic, err)
	}
	addr := targets[sortedKeys(targets)[0]]
	props := message.RemoveProperties(m.Properties, message.PropRetryTopic, message.PropRealTopic, message.PropRealQueueID,
		message.PropDelayTimeLevel, message.PropTimerDeliverMs, message.PropTimerDelaySec, message.PropTimerDelayMs,
		message.PropTimerOutMs, message.PropMinOffset, message.PropMaxOffset, message.PropTransactionPrepared,
		"TXMQ_SCHEDULED_OFFSET")
	req := remoting.NewRequest(remoting.ReqSendMessage, map[string]string{
		"producerGroup": "TOOLS_PRODUCER", "topic": topic, "defaultTopic": message.DefaultTopic, "defaultTopicQueueNums": "4",
		"queueId": "-1", "sysFlag": strconv.Itoa(int(m.SysFlag & message.FlagCompressed)),
		"bornTimestamp": strconv.FormatInt(m.BornTimestamp, 10), "flag": strconv.Itoa(int(m.Flag)),
		"properties": props, "reconsumeTimes": "0", "unitMode": "false", "batch": "false",
	})
	req.Body = m.Body
	resp, err := a.call(c.Context(), addr, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.OutOrStdout(), "resent %s to %s on %s: queue %s, offset msgId %s\n", dlqID(m), topic, addr,
		resp.ExtStringOr("queueId", ""), resp.ExtStringOr("msgId", ""))
	return nil
}

// Command transaction is the smallest complete use of txmq's transactional
// messages with the official RocketMQ Go client
// (github.com/apache/rocketmq-client-go/v2):
//
//  1. a transaction producer sends a half message: txmq stores it, but no
//     consumer can see it yet;
//  2. the producer's TransactionListener runs the local transaction
//     (ExecuteLocalTransaction) and answers COMMIT, so the message becomes
//     visible;
//  3. a push consumer receives it.
//
// If the producer had answered UNKNOWN (or crashed before answering), txmq
// would ask a live producer of the group later with CheckLocalTransaction.
//
// Run it against a broker whose name server is on 127.0.0.1:9876 (make run):
//
//	cd interop && go run ./examples/transaction -namesrv 127.0.0.1:9876
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func main() {
	namesrv := flag.String("namesrv", "127.0.0.1:9876", "name server address (host:port, several separated by ';')")
	topic := flag.String("topic", "TxExampleTopic", "topic to send to (created on first send when autoCreateTopicEnable is on)")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()

	rlog.SetLogLevel("error") // the client logs a lot at info level
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg := Config{NameServer: strings.Split(*namesrv, ";"), Topic: *topic}
	if err := Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "transaction example:", err)
		os.Exit(1)
	}
}

// Config is what Run needs.
type Config struct {
	NameServer    []string // name server addresses
	Topic         string
	ProducerGroup string // default "TxExampleProducer"
	ConsumerGroup string // default "TxExampleConsumer"
}

// localTransaction is the application's side of the transaction. A real
// application would, in ExecuteLocalTransaction, write its database row
// (recording the transaction id) and answer COMMIT when that succeeded,
// ROLLBACK when it failed; CheckLocalTransaction looks that row up.
type localTransaction struct {
	out io.Writer
}

func (l localTransaction) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	fmt.Fprintf(l.out, "local transaction for %s ran: commit\n", m.TransactionId)
	return primitive.CommitMessageState
}

func (l localTransaction) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	// Only called when the broker did not get our answer in time.
	fmt.Fprintf(l.out, "broker asks about %s: commit\n", m.TransactionId)
	return primitive.CommitMessageState
}

// Run sends one transactional message, commits it, and waits until a push
// consumer has received it.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if cfg.ProducerGroup == "" {
		cfg.ProducerGroup = "TxExampleProducer"
	}
	if cfg.ConsumerGroup == "" {
		cfg.ConsumerGroup = "TxExampleConsumer"
	}

	// 1. The transaction producer, with its listener.
	p, err := rocketmq.NewTransactionProducer(localTransaction{out},
		producer.WithNameServer(cfg.NameServer),
		producer.WithGroupName(cfg.ProducerGroup),
		producer.WithInstanceName(cfg.ProducerGroup),
		producer.WithRetry(2),
	)
	if err != nil {
		return fmt.Errorf("new transaction producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return fmt.Errorf("start transaction producer: %w", err)
	}
	defer p.Shutdown()

	// 2. Send the half message; the listener commits it before this returns.
	body := fmt.Sprintf("hello from a transaction at %s", time.Now().Format(time.RFC3339Nano))
	msg := primitive.NewMessage(cfg.Topic, []byte(body))
	msg.WithTag("example")
	res, err := p.SendMessageInTransaction(ctx, msg)
	if err != nil {
		return fmt.Errorf("send transactional message: %w", err)
	}
	if res.Status != primitive.SendOK {
		return fmt.Errorf("send transactional message: status %v", res.Status)
	}
	if res.State != primitive.CommitMessageState {
		return fmt.Errorf("local transaction answered %v, not commit", res.State)
	}
	// MsgID is the message's id (its UNIQ_KEY): the one consumers see and
	// `txmq admin message by-key <topic> <id>` finds.
	fmt.Fprintf(out, "committed message %s (transaction %s) to %s\n", res.MsgID, res.TransactionID, cfg.Topic)

	// 3. A push consumer receives it. A new consumer group starts at the
	// topic's first message; later runs continue where the last one stopped.
	got := make(chan *primitive.MessageExt, 1)
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNameServer(cfg.NameServer),
		consumer.WithGroupName(cfg.ConsumerGroup),
		consumer.WithInstance(cfg.ConsumerGroup),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		return fmt.Errorf("new push consumer: %w", err)
	}
	err = c.Subscribe(cfg.Topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "example"},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				if m.MsgId == res.MsgID {
					select {
					case got <- m:
					default:
					}
				}
			}
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start push consumer: %w", err)
	}
	defer c.Shutdown()

	select {
	case m := <-got:
		fmt.Fprintf(out, "consumer received %s from %s queue %d: %q\n", m.MsgId, m.Topic, m.Queue.QueueId, m.Body)
		// The official client rebalances in the background after Start and
		// does not synchronise that with Shutdown: let it settle first.
		time.Sleep(300 * time.Millisecond)
		return nil
	case <-ctx.Done():
		return errors.New("the consumer did not receive the message in time: " + ctx.Err().Error())
	}
}

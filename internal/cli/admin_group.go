package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/txmq/txmq/internal/broker"
	"github.com/txmq/txmq/internal/remoting"
)

func newAdminGroupCommand(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Inspect consumer groups"}
	var topic string
	offsets := &cobra.Command{
		Use:   "offsets <group>",
		Short: "Per queue: broker offset, consumer offset and lag of a consumer group",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			targets, err := a.masters(c.Context())
			if err != nil {
				return err
			}
			var rows []broker.QueueConsumeStats
			for _, name := range sortedKeys(targets) {
				ext := map[string]string{"consumerGroup": args[0]}
				if topic != "" {
					ext["topic"] = topic
				}
				resp, err := a.call(c.Context(), targets[name], remoting.NewRequest(remoting.ReqGetConsumeStats, ext))
				if err != nil {
					return err
				}
				var body broker.ConsumeStatsBody
				if err := json.Unmarshal(resp.Body, &body); err != nil {
					return fmt.Errorf("consume stats from %s: %w", targets[name], err)
				}
				rows = append(rows, body.OffsetTable...)
			}
			sort.Slice(rows, func(i, j int) bool {
				x, y := rows[i], rows[j]
				if x.Topic != y.Topic {
					return x.Topic < y.Topic
				}
				if x.BrokerName != y.BrokerName {
					return x.BrokerName < y.BrokerName
				}
				return x.QueueID < y.QueueID
			})
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOPIC\tBROKER\tQUEUE\tBROKER_OFFSET\tCONSUMER_OFFSET\tLAG")
			var lag int64
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\n", r.Topic, r.BrokerName, r.QueueID, r.BrokerOffset, r.ConsumerOffset, r.Lag)
				lag += r.Lag
			}
			fmt.Fprintf(w, "total lag\t\t\t\t\t%d\n", lag)
			return w.Flush()
		},
	}
	offsets.Flags().StringVar(&topic, "topic", "", "only this topic")
	cmd.AddCommand(offsets)
	return cmd
}

func newAdminTopicStatsCommand(a *adminClient) *cobra.Command {
	return &cobra.Command{
		Use:   "stats <topic>",
		Short: "Per queue min and max offsets of a topic",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			targets, err := a.topicMasters(c.Context(), args[0])
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "BROKER\tQUEUE\tMIN_OFFSET\tMAX_OFFSET")
			for _, name := range sortedKeys(targets) {
				resp, err := a.call(c.Context(), targets[name], remoting.NewRequest(remoting.ReqGetTopicStatsInfo, map[string]string{"topic": args[0]}))
				if err != nil {
					return err
				}
				var body broker.TopicStatsBody
				if err := json.Unmarshal(resp.Body, &body); err != nil {
					return fmt.Errorf("topic stats from %s: %w", targets[name], err)
				}
				for _, q := range body.OffsetTable {
					fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", q.BrokerName, q.QueueID, q.MinOffset, q.MaxOffset)
				}
			}
			return w.Flush()
		},
	}
}

package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/txn"
)

// newAdminTxCommand is `txmq admin tx …`: see and resolve transactional
// messages on every master broker, with txmq's operator request codes
// (txn.ReqTx*).
func newAdminTxCommand(a *adminClient) *cobra.Command {
	cmd := &cobra.Command{Use: "tx", Short: "List, commit, roll back, resume transactional messages; show their counters"}
	var asJSON bool
	var limit int
	var topic, group, txid string
	var minAge time.Duration

	// each sends req (built per broker) to every master and hands each
	// answer's body to fn, in broker-name order.
	each := func(c *cobra.Command, mk func() *remoting.Command, fn func(broker string, resp *remoting.Command) error) error {
		targets, err := a.masters(c.Context())
		if err != nil {
			return err
		}
		for _, name := range sortedKeys(targets) {
			resp, err := a.call(c.Context(), targets[name], mk())
			if err != nil {
				return err
			}
			if err := fn(name, resp); err != nil {
				return err
			}
		}
		return nil
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List pending transactions, oldest first (topic, group, transaction id, age, checks sent, next check)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			all, err := gatherJSON(c, each, "list", func() *remoting.Command {
				return remoting.NewRequest(txn.ReqTxList, map[string]string{"limit": strconv.Itoa(limit), "topic": topic,
					"producerGroup": group, "transactionId": txid, "minAgeMs": strconv.FormatInt(minAge.Milliseconds(), 10)})
			}, func(r *txn.ListResponse) *string { return &r.BrokerName })
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), all)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BROKER\tTOPIC\tQUEUE\tGROUP\tTRANSACTION ID\tAGE\tCHECKS\tNEXT CHECK\tSTATE")
			total := int64(0)
			for _, lr := range all {
				total += lr.Pending
				for _, p := range lr.List {
					next := "-"
					if !p.NextCheck.IsZero() {
						next = p.NextCheck.Local().Format(time.DateTime)
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", lr.BrokerName, p.Topic, p.QueueID, p.ProducerGroup,
						p.TransactionID, (time.Duration(p.AgeMs) * time.Millisecond).Round(time.Second), p.ChecksSent, next, p.State)
				}
			}
			tw.Flush()
			fmt.Fprintf(c.OutOrStdout(), "%d pending in all\n", total)
			return nil
		},
	}
	list.Flags().IntVar(&limit, "limit", 100, "most transactions per broker")
	list.Flags().StringVar(&topic, "topic", "", "only this (real) topic")
	list.Flags().StringVar(&group, "group", "", "only this producer group")
	list.Flags().StringVar(&txid, "txid", "", "only this transaction id")
	list.Flags().DurationVar(&minAge, "min-age", 0, "only transactions older than this")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	end := func(use, short string, code int32) *cobra.Command {
		var grp string
		ec := &cobra.Command{
			Use:   use + " <txid>",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				targets, err := a.masters(c.Context())
				if err != nil {
					return err
				}
				found := 0
				for _, name := range sortedKeys(targets) {
					ctx, cancel := a.ctx(c.Context())
					resp, err := a.pool.Invoke(ctx, targets[name], remoting.NewRequest(code,
						map[string]string{"transactionId": args[0], "producerGroup": grp}))
					cancel()
					if err != nil {
						return err
					}
					if resp.Code == remoting.RespQueryNotFound || resp.Code == remoting.RespIllegalOperation && code == txn.ReqTxResume {
						continue // not on this broker
					}
					if resp.Code != remoting.RespSuccess {
						return fmt.Errorf("%s: %s (code %d)", name, resp.Remark, resp.Code)
					}
					found++
					if asJSON {
						fmt.Fprintf(c.OutOrStdout(), "%s\n", resp.Body)
						continue
					}
					if code == txn.ReqTxResume {
						var rr txn.ResumeResult
						json.Unmarshal(resp.Body, &rr)
						fmt.Fprintf(c.OutOrStdout(), "%s: %s (group %s, topic %s) is pending again; it will be checked now\n",
							name, rr.TransactionID, rr.ProducerGroup, rr.Topic)
						continue
					}
					var er txn.EndResult
					json.Unmarshal(resp.Body, &er)
					if er.Duplicate {
						fmt.Fprintf(c.OutOrStdout(), "%s: %s was already %s; nothing done\n", name, args[0], er.State)
					} else {
						fmt.Fprintf(c.OutOrStdout(), "%s: %s %s\n", name, args[0], er.State)
					}
				}
				if found == 0 {
					return fmt.Errorf("no broker has a transaction %q to %s", args[0], use)
				}
				return nil
			},
		}
		ec.Flags().StringVar(&grp, "group", "", "producer group (when several groups use the id)")
		ec.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		return ec
	}

	discarded := &cobra.Command{
		Use:   "discarded",
		Short: "List transactions discarded after transactionCheckMax checks (TRANS_CHECK_MAX_TIME_TOPIC), newest first",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			all, err := gatherJSON(c, each, "discarded", func() *remoting.Command {
				return remoting.NewRequest(txn.ReqTxDiscarded, map[string]string{"limit": strconv.Itoa(limit)})
			}, func(r *txn.DiscardedResponse) *string { return &r.BrokerName })
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), all)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BROKER\tTOPIC\tGROUP\tTRANSACTION ID\tSTORED\tDISCARDED\tCHECKS\tREASON\tSTATE")
			for _, dr := range all {
				for _, d := range dr.List {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", dr.BrokerName, d.Topic, d.ProducerGroup, d.TransactionID,
						d.StoreTime.Local().Format(time.DateTime), d.DiscardTime.Local().Format(time.DateTime), d.ChecksSent, d.Reason, d.State)
				}
			}
			return tw.Flush()
		},
	}
	discarded.Flags().IntVar(&limit, "limit", 100, "most transactions per broker")
	discarded.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	stats := &cobra.Command{
		Use:   "stats",
		Short: "Show the transaction counters of every master broker",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			all, err := gatherJSON(c, each, "stats", func() *remoting.Command { return remoting.NewRequest(txn.ReqTxStats, nil) },
				func(r *txn.StatsResponse) *string { return &r.BrokerName })
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), all)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BROKER\tHALF\tCOMMIT c/k/o\tROLLBACK c/k/o\tDUP ENDS\tCHECKS s/d\tANSWERS c/r/u\tDISCARDED\tRESUMED\tPENDING\tOLDEST\tWINDOW o/w")
			for _, s := range all {
				fmt.Fprintf(tw, "%s\t%d\t%d/%d/%d\t%d/%d/%d\t%d\t%d/%d\t%d/%d/%d\t%d\t%d\t%d\t%s\t%d/%d\n", s.BrokerName, s.HalfStored,
					s.Committed.Client, s.Committed.Check, s.Committed.Operator,
					s.RolledBack.Client, s.RolledBack.Check, s.RolledBack.Operator,
					s.DuplicateEnds, s.ChecksSent, s.ChecksDeferred, s.CheckAnswers.Commit, s.CheckAnswers.Rollback, s.CheckAnswers.Unknown,
					s.Discarded, s.Resumed, s.Pending, (time.Duration(s.OldestPendingAgeMs) * time.Millisecond).Round(time.Second),
					s.ChecksOutstanding, s.WaitingForWindow)
			}
			tw.Flush()
			fmt.Fprintln(c.OutOrStdout(), "(c/k/o: client/check/operator; s/d: sent/deferred (the producer's connection was backed up); c/r/u: commit/rollback/unknown; counters since broker start;"+
				" o/w: checks outstanding / transactions waiting for the check window)")
			return nil
		},
	}
	stats.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	cmd.AddCommand(list,
		end("commit", "Commit a pending (or discarded) transaction by its transaction id", txn.ReqTxCommit),
		end("rollback", "Roll back a pending (or discarded) transaction by its transaction id", txn.ReqTxRollback),
		discarded,
		end("resume", "Put a discarded transaction back to pending (checks start again from 0)", txn.ReqTxResume),
		stats)
	return cmd
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// eachFunc sends a request (built per broker) to every master broker and
// hands each answer to fn, in broker-name order.
type eachFunc func(c *cobra.Command, mk func() *remoting.Command, fn func(broker string, resp *remoting.Command) error) error

// gatherJSON asks every master broker and decodes each JSON answer into a
// T, naming the broker where the answer left its name empty.
func gatherJSON[T any](c *cobra.Command, each eachFunc, what string, mk func() *remoting.Command, brokerName func(*T) *string) ([]T, error) {
	var all []T
	err := each(c, mk, func(broker string, resp *remoting.Command) error {
		var v T
		if err := json.Unmarshal(resp.Body, &v); err != nil {
			return fmt.Errorf("%s from %s: %w", what, broker, err)
		}
		if n := brokerName(&v); *n == "" {
			*n = broker
		}
		all = append(all, v)
		return nil
	})
	return all, err
}

package txn

// Operator request codes of `txmq admin tx`. They are txmq's own: the
// private range 10800–10809 is unused by Apache RocketMQ (its codes stop
// below 1000 apart from the 5.x proxy codes at 200050+) and fits the int16
// that G2 and the binary header carry. Requests carry ext fields; success
// responses carry a JSON body. Errors answer with a RocketMQ response code
// (see ResponseCode) and the message as remark.
const (
	// ReqTxList lists pending transactions, oldest first.
	// ext: limit (default 100), topic, producerGroup, transactionId, minAgeMs.
	// body: ListResponse.
	ReqTxList int32 = 10800
	// ReqTxCommit commits a transaction (pending, or discarded: it is
	// resumed first). ext: transactionId, producerGroup (optional, to
	// disambiguate). body: EndResult.
	ReqTxCommit int32 = 10801
	// ReqTxRollback rolls a transaction back. ext and body as ReqTxCommit.
	ReqTxRollback int32 = 10802
	// ReqTxDiscarded lists discarded transactions, newest first.
	// ext: limit (default 100). body: DiscardedResponse.
	ReqTxDiscarded int32 = 10803
	// ReqTxResume puts a discarded transaction back to PREPARED.
	// ext: transactionId. body: ResumeResult.
	ReqTxResume int32 = 10804
	// ReqTxStats returns the counters. body: StatsResponse.
	ReqTxStats int32 = 10805
)

// AdminCodes lists the operator codes (for registration and docs).
var AdminCodes = []int32{ReqTxList, ReqTxCommit, ReqTxRollback, ReqTxDiscarded, ReqTxResume, ReqTxStats}

// ListResponse is the body of a ReqTxList answer.
type ListResponse struct {
	BrokerName string        `json:"brokerName"`
	Pending    int64         `json:"pending"` // all pending on the broker
	List       []PendingInfo `json:"list"`
}

// DiscardedResponse is the body of a ReqTxDiscarded answer.
type DiscardedResponse struct {
	BrokerName string          `json:"brokerName"`
	List       []DiscardedInfo `json:"list"`
}

// StatsResponse is the body of a ReqTxStats answer.
type StatsResponse struct {
	BrokerName string `json:"brokerName"`
	Stats
}

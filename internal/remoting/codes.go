package remoting

import "strconv"

// Request codes, from Apache RocketMQ's RequestCode.java (5.3.x). G2 reads
// codes as int16, so every code sent to it must fit; all of these do.
const (
	ReqSendMessage                      int32 = 10
	ReqPullMessage                      int32 = 11
	ReqQueryMessage                     int32 = 12
	ReqQueryBrokerOffset                int32 = 13
	ReqQueryConsumerOffset              int32 = 14
	ReqUpdateConsumerOffset             int32 = 15
	ReqUpdateAndCreateTopic             int32 = 17
	ReqUpdateAndCreateTopicList         int32 = 18
	ReqGetAllTopicConfig                int32 = 21
	ReqGetTopicConfigList               int32 = 22
	ReqGetTopicNameList                 int32 = 23
	ReqUpdateBrokerConfig               int32 = 25
	ReqGetBrokerConfig                  int32 = 26
	ReqTriggerDeleteFiles               int32 = 27
	ReqGetBrokerRuntimeInfo             int32 = 28
	ReqSearchOffsetByTimestamp          int32 = 29
	ReqGetMaxOffset                     int32 = 30
	ReqGetMinOffset                     int32 = 31
	ReqGetEarliestMsgStoreTime          int32 = 32
	ReqViewMessageByID                  int32 = 33
	ReqHeartBeat                        int32 = 34
	ReqUnregisterClient                 int32 = 35
	ReqConsumerSendMsgBack              int32 = 36
	ReqEndTransaction                   int32 = 37
	ReqGetConsumerListByGroup           int32 = 38
	ReqCheckTransactionState            int32 = 39
	ReqNotifyConsumerIDsChanged         int32 = 40
	ReqLockBatchMQ                      int32 = 41
	ReqUnlockBatchMQ                    int32 = 42
	ReqGetAllConsumerOffset             int32 = 43
	ReqGetAllDelayOffset                int32 = 45
	ReqPutKVConfig                      int32 = 100
	ReqGetKVConfig                      int32 = 101
	ReqDeleteKVConfig                   int32 = 102
	ReqRegisterBroker                   int32 = 103
	ReqUnregisterBroker                 int32 = 104
	ReqGetRouteInfoByTopic              int32 = 105
	ReqGetBrokerClusterInfo             int32 = 106
	ReqUpdateAndCreateSubscriptionGroup int32 = 200
	ReqGetAllSubscriptionGroupConfig    int32 = 201
	ReqGetTopicStatsInfo                int32 = 202
	ReqGetConsumerConnectionList        int32 = 203
	ReqGetProducerConnectionList        int32 = 204
	ReqWipeWritePermOfBroker            int32 = 205
	ReqGetAllTopicListFromNameServer    int32 = 206
	ReqDeleteSubscriptionGroup          int32 = 207
	ReqGetConsumeStats                  int32 = 208
	ReqQueryTopicConsumeByWho           int32 = 300
	ReqDeleteTopicInBroker              int32 = 215
	ReqDeleteTopicInNamesrv             int32 = 216
	ReqRegisterTopicInNamesrv           int32 = 217
	ReqResetConsumerClientOffset        int32 = 220
	ReqGetConsumerStatusFromClient      int32 = 221
	ReqInvokeBrokerToResetOffset        int32 = 222
	ReqInvokeBrokerToGetConsumerStatus  int32 = 223
	ReqGetTopicsByCluster               int32 = 224
	ReqGetConsumerRunningInfo           int32 = 307
	ReqConsumeMessageDirectly           int32 = 309
	ReqSendMessageV2                    int32 = 310
	ReqGetBrokerConsumeStats            int32 = 317
	ReqSendBatchMessage                 int32 = 320
	ReqQueryConsumeQueue                int32 = 321
	ReqQueryDataVersion                 int32 = 322
	ReqResumeCheckHalfMessage           int32 = 323
	ReqSendReplyMessage                 int32 = 324
	ReqSendReplyMessageV2               int32 = 325
	ReqPushReplyMessageToClient         int32 = 326
	ReqAddWritePermOfBroker             int32 = 327
	ReqGetAllProducerInfo               int32 = 328
	ReqGetTopicConfig                   int32 = 351
	ReqGetSubscriptionGroupConfig       int32 = 352
	ReqLitePullMessage                  int32 = 361
	ReqQueryAssignment                  int32 = 400
	ReqGetBrokerMemberGroup             int32 = 901
	ReqBrokerHeartbeat                  int32 = 904
)

// Response codes, from Apache RocketMQ's RemotingSysResponseCode.java and
// ResponseCode.java (5.3.x).
const (
	RespSuccess                    int32 = 0
	RespSystemError                int32 = 1
	RespSystemBusy                 int32 = 2
	RespRequestCodeNotSupported    int32 = 3
	RespTransactionFailed          int32 = 4
	RespFlushDiskTimeout           int32 = 10
	RespSlaveNotAvailable          int32 = 11
	RespFlushSlaveTimeout          int32 = 12
	RespMessageIllegal             int32 = 13
	RespServiceNotAvailable        int32 = 14
	RespVersionNotSupported        int32 = 15
	RespNoPermission               int32 = 16
	RespTopicNotExist              int32 = 17
	RespTopicExistAlready          int32 = 18
	RespPullNotFound               int32 = 19
	RespPullRetryImmediately       int32 = 20
	RespPullOffsetMoved            int32 = 21
	RespQueryNotFound              int32 = 22
	RespSubscriptionParseFailed    int32 = 23
	RespSubscriptionNotExist       int32 = 24
	RespSubscriptionNotLatest      int32 = 25
	RespSubscriptionGroupNotExist  int32 = 26
	RespFilterDataNotExist         int32 = 27
	RespFilterDataNotLatest        int32 = 28
	RespInvalidParameter           int32 = 29
	RespTransactionShouldCommit    int32 = 200
	RespTransactionShouldRollback  int32 = 201
	RespTransactionStateUnknown    int32 = 202
	RespTransactionStateGroupWrong int32 = 203
	RespNoBuyerID                  int32 = 204
	RespNotInCurrentUnit           int32 = 205
	RespConsumerNotOnline          int32 = 206
	RespConsumeMsgTimeout          int32 = 207
	RespNoMessage                  int32 = 208
	RespPollingFull                int32 = 209
	RespPollingTimeout             int32 = 210
	RespBrokerNotExist             int32 = 211
	RespBrokerDispatchNotComplete  int32 = 212
	RespBroadcastConsumption       int32 = 213
	RespFlowControl                int32 = 215
	RespNotLeaderForQueue          int32 = 501
	RespIllegalOperation           int32 = 604
	RespGoAway                     int32 = 1500
)

var requestCodeNames = map[int32]string{
	ReqSendMessage:                      "SEND_MESSAGE",
	ReqPullMessage:                      "PULL_MESSAGE",
	ReqQueryMessage:                     "QUERY_MESSAGE",
	ReqQueryBrokerOffset:                "QUERY_BROKER_OFFSET",
	ReqQueryConsumerOffset:              "QUERY_CONSUMER_OFFSET",
	ReqUpdateConsumerOffset:             "UPDATE_CONSUMER_OFFSET",
	ReqUpdateAndCreateTopic:             "UPDATE_AND_CREATE_TOPIC",
	ReqUpdateAndCreateTopicList:         "UPDATE_AND_CREATE_TOPIC_LIST",
	ReqGetAllTopicConfig:                "GET_ALL_TOPIC_CONFIG",
	ReqGetTopicConfigList:               "GET_TOPIC_CONFIG_LIST",
	ReqGetTopicNameList:                 "GET_TOPIC_NAME_LIST",
	ReqUpdateBrokerConfig:               "UPDATE_BROKER_CONFIG",
	ReqGetBrokerConfig:                  "GET_BROKER_CONFIG",
	ReqTriggerDeleteFiles:               "TRIGGER_DELETE_FILES",
	ReqGetBrokerRuntimeInfo:             "GET_BROKER_RUNTIME_INFO",
	ReqSearchOffsetByTimestamp:          "SEARCH_OFFSET_BY_TIMESTAMP",
	ReqGetMaxOffset:                     "GET_MAX_OFFSET",
	ReqGetMinOffset:                     "GET_MIN_OFFSET",
	ReqGetEarliestMsgStoreTime:          "GET_EARLIEST_MSG_STORETIME",
	ReqViewMessageByID:                  "VIEW_MESSAGE_BY_ID",
	ReqHeartBeat:                        "HEART_BEAT",
	ReqUnregisterClient:                 "UNREGISTER_CLIENT",
	ReqConsumerSendMsgBack:              "CONSUMER_SEND_MSG_BACK",
	ReqEndTransaction:                   "END_TRANSACTION",
	ReqGetConsumerListByGroup:           "GET_CONSUMER_LIST_BY_GROUP",
	ReqCheckTransactionState:            "CHECK_TRANSACTION_STATE",
	ReqNotifyConsumerIDsChanged:         "NOTIFY_CONSUMER_IDS_CHANGED",
	ReqLockBatchMQ:                      "LOCK_BATCH_MQ",
	ReqUnlockBatchMQ:                    "UNLOCK_BATCH_MQ",
	ReqGetAllConsumerOffset:             "GET_ALL_CONSUMER_OFFSET",
	ReqGetAllDelayOffset:                "GET_ALL_DELAY_OFFSET",
	ReqPutKVConfig:                      "PUT_KV_CONFIG",
	ReqGetKVConfig:                      "GET_KV_CONFIG",
	ReqDeleteKVConfig:                   "DELETE_KV_CONFIG",
	ReqRegisterBroker:                   "REGISTER_BROKER",
	ReqUnregisterBroker:                 "UNREGISTER_BROKER",
	ReqGetRouteInfoByTopic:              "GET_ROUTEINFO_BY_TOPIC",
	ReqGetBrokerClusterInfo:             "GET_BROKER_CLUSTER_INFO",
	ReqUpdateAndCreateSubscriptionGroup: "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP",
	ReqGetAllSubscriptionGroupConfig:    "GET_ALL_SUBSCRIPTIONGROUP_CONFIG",
	ReqGetTopicStatsInfo:                "GET_TOPIC_STATS_INFO",
	ReqGetConsumerConnectionList:        "GET_CONSUMER_CONNECTION_LIST",
	ReqGetProducerConnectionList:        "GET_PRODUCER_CONNECTION_LIST",
	ReqWipeWritePermOfBroker:            "WIPE_WRITE_PERM_OF_BROKER",
	ReqGetAllTopicListFromNameServer:    "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
	ReqDeleteSubscriptionGroup:          "DELETE_SUBSCRIPTIONGROUP",
	ReqGetConsumeStats:                  "GET_CONSUME_STATS",
	ReqQueryTopicConsumeByWho:           "QUERY_TOPIC_CONSUME_BY_WHO",
	ReqDeleteTopicInBroker:              "DELETE_TOPIC_IN_BROKER",
	ReqDeleteTopicInNamesrv:             "DELETE_TOPIC_IN_NAMESRV",
	ReqRegisterTopicInNamesrv:           "REGISTER_TOPIC_IN_NAMESRV",
	ReqResetConsumerClientOffset:        "RESET_CONSUMER_CLIENT_OFFSET",
	ReqGetConsumerStatusFromClient:      "GET_CONSUMER_STATUS_FROM_CLIENT",
	ReqInvokeBrokerToResetOffset:        "INVOKE_BROKER_TO_RESET_OFFSET",
	ReqInvokeBrokerToGetConsumerStatus:  "INVOKE_BROKER_TO_GET_CONSUMER_STATUS",
	ReqGetTopicsByCluster:               "GET_TOPICS_BY_CLUSTER",
	ReqGetConsumerRunningInfo:           "GET_CONSUMER_RUNNING_INFO",
	ReqConsumeMessageDirectly:           "CONSUME_MESSAGE_DIRECTLY",
	ReqSendMessageV2:                    "SEND_MESSAGE_V2",
	ReqGetBrokerConsumeStats:            "GET_BROKER_CONSUME_STATS",
	ReqSendBatchMessage:                 "SEND_BATCH_MESSAGE",
	ReqQueryConsumeQueue:                "QUERY_CONSUME_QUEUE",
	ReqQueryDataVersion:                 "QUERY_DATA_VERSION",
	ReqResumeCheckHalfMessage:           "RESUME_CHECK_HALF_MESSAGE",
	ReqSendReplyMessage:                 "SEND_REPLY_MESSAGE",
	ReqSendReplyMessageV2:               "SEND_REPLY_MESSAGE_V2",
	ReqPushReplyMessageToClient:         "PUSH_REPLY_MESSAGE_TO_CLIENT",
	ReqAddWritePermOfBroker:             "ADD_WRITE_PERM_OF_BROKER",
	ReqGetAllProducerInfo:               "GET_ALL_PRODUCER_INFO",
	ReqGetTopicConfig:                   "GET_TOPIC_CONFIG",
	ReqGetSubscriptionGroupConfig:       "GET_SUBSCRIPTIONGROUP_CONFIG",
	ReqLitePullMessage:                  "LITE_PULL_MESSAGE",
	ReqQueryAssignment:                  "QUERY_ASSIGNMENT",
	ReqGetBrokerMemberGroup:             "GET_BROKER_MEMBER_GROUP",
	ReqBrokerHeartbeat:                  "BROKER_HEARTBEAT",
}

var responseCodeNames = map[int32]string{
	RespSuccess:                    "SUCCESS",
	RespSystemError:                "SYSTEM_ERROR",
	RespSystemBusy:                 "SYSTEM_BUSY",
	RespRequestCodeNotSupported:    "REQUEST_CODE_NOT_SUPPORTED",
	RespTransactionFailed:          "TRANSACTION_FAILED",
	RespFlushDiskTimeout:           "FLUSH_DISK_TIMEOUT",
	RespSlaveNotAvailable:          "SLAVE_NOT_AVAILABLE",
	RespFlushSlaveTimeout:          "FLUSH_SLAVE_TIMEOUT",
	RespMessageIllegal:             "MESSAGE_ILLEGAL",
	RespServiceNotAvailable:        "SERVICE_NOT_AVAILABLE",
	RespVersionNotSupported:        "VERSION_NOT_SUPPORTED",
	RespNoPermission:               "NO_PERMISSION",
	RespTopicNotExist:              "TOPIC_NOT_EXIST",
	RespTopicExistAlready:          "TOPIC_EXIST_ALREADY",
	RespPullNotFound:               "PULL_NOT_FOUND",
	RespPullRetryImmediately:       "PULL_RETRY_IMMEDIATELY",
	RespPullOffsetMoved:            "PULL_OFFSET_MOVED",
	RespQueryNotFound:              "QUERY_NOT_FOUND",
	RespSubscriptionParseFailed:    "SUBSCRIPTION_PARSE_FAILED",
	RespSubscriptionNotExist:       "SUBSCRIPTION_NOT_EXIST",
	RespSubscriptionNotLatest:      "SUBSCRIPTION_NOT_LATEST",
	RespSubscriptionGroupNotExist:  "SUBSCRIPTION_GROUP_NOT_EXIST",
	RespFilterDataNotExist:         "FILTER_DATA_NOT_EXIST",
	RespFilterDataNotLatest:        "FILTER_DATA_NOT_LATEST",
	RespInvalidParameter:           "INVALID_PARAMETER",
	RespTransactionShouldCommit:    "TRANSACTION_SHOULD_COMMIT",
	RespTransactionShouldRollback:  "TRANSACTION_SHOULD_ROLLBACK",
	RespTransactionStateUnknown:    "TRANSACTION_STATE_UNKNOW",
	RespTransactionStateGroupWrong: "TRANSACTION_STATE_GROUP_WRONG",
	RespNoBuyerID:                  "NO_BUYER_ID",
	RespNotInCurrentUnit:           "NOT_IN_CURRENT_UNIT",
	RespConsumerNotOnline:          "CONSUMER_NOT_ONLINE",
	RespConsumeMsgTimeout:          "CONSUME_MSG_TIMEOUT",
	RespNoMessage:                  "NO_MESSAGE",
	RespPollingFull:                "POLLING_FULL",
	RespPollingTimeout:             "POLLING_TIMEOUT",
	RespBrokerNotExist:             "BROKER_NOT_EXIST",
	RespBrokerDispatchNotComplete:  "BROKER_DISPATCH_NOT_COMPLETE",
	RespBroadcastConsumption:       "BROADCAST_CONSUMPTION",
	RespFlowControl:                "FLOW_CONTROL",
	RespNotLeaderForQueue:          "NOT_LEADER_FOR_QUEUE",
	RespIllegalOperation:           "ILLEGAL_OPERATION",
	RespGoAway:                     "GO_AWAY",
}

// RequestCodeName returns the RocketMQ name of a request code, such as
// "SEND_MESSAGE", or "REQUEST_CODE(n)" for a code it does not know. Request
// and response codes overlap (10 is SEND_MESSAGE and FLUSH_DISK_TIMEOUT), so
// there is one function per kind; Command.CodeName picks the right one.
func RequestCodeName(code int32) string {
	if n, ok := requestCodeNames[code]; ok {
		return n
	}
	return "REQUEST_CODE(" + strconv.Itoa(int(code)) + ")"
}

// ResponseCodeName returns the RocketMQ name of a response code, such as
// "TOPIC_NOT_EXIST", or "RESPONSE_CODE(n)" for a code it does not know.
func ResponseCodeName(code int32) string {
	if n, ok := responseCodeNames[code]; ok {
		return n
	}
	return "RESPONSE_CODE(" + strconv.Itoa(int(code)) + ")"
}

// Package message is txmq's message model and its RocketMQ wire encodings.
//
// The central type is [Ext], Apache RocketMQ's MessageExt: the record the
// broker stores in its commit log and the record a pull response carries.
// txmq stores exactly the bytes a consumer receives, so [Ext.AppendTo]
// (encode) and [Parse] (a zero-copy, validating view) are the only two places
// that know the layout:
//
//	TOTALSIZE int32 | MAGICCODE int32 | BODYCRC int32 | QUEUEID int32 |
//	FLAG int32 | QUEUEOFFSET int64 | PHYSICALOFFSET int64 | SYSFLAG int32 |
//	BORNTIMESTAMP int64 | BORNHOST 8 or 20 | STORETIMESTAMP int64 |
//	STOREHOST 8 or 20 | RECONSUMETIMES int32 | PREPAREDTXOFFSET int64 |
//	BODYLEN int32 + BODY | TOPICLEN int8 + TOPIC | PROPSLEN int16 + PROPS
//
// All integers are big-endian. Records are always written with magic V1
// (one-byte topic length): the official Go client ignores the magic and
// always reads one byte, so V2 must never reach it. [Parse] also reads V2.
//
// The package also holds the properties codec (key \x01 value \x02 ...),
// the system property names, offset message ids, Java's String.hashCode
// for tags, the batch body codec and topic-name validation.
//
// # Caveats
//
// A [View] aliases the buffer it was parsed from; copy what must outlive it.
// Topics are limited to 127 bytes and encoded properties to 32767 bytes,
// because the official clients read those lengths as signed 8- and 16-bit
// integers.
package message

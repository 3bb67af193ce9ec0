// Package namesrv is txmq's name server: the route registry clients ask for
// topic routes, and the remoting handlers around it.
//
// Brokers register (REGISTER_BROKER) with their topics every 30 s; a broker
// not heard from for its heartbeat timeout (120 s by default) is dropped with
// its routes. Clients ask GET_ROUTEINFO_BY_TOPIC; admin tools list topics and
// clusters. The route JSON is compact, as the official Go client requires
// (protocol.md rule 4).
//
// The registry is in memory only, as in Apache RocketMQ: brokers re-register
// within one period after a name server restart.
package namesrv

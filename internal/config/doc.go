// Package config holds the broker's configuration: one Config struct with
// Apache RocketMQ's key names (so an operator's broker.conf works as it is)
// plus txmq's own keys, the defaults, the broker.conf parser and the
// validation that stops start-up on a bad value.
//
// Precedence is flags > file > defaults. Unknown keys in a file are reported
// once as warnings; a bad value is an error naming the key, the value and
// what is allowed.
package config

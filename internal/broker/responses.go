package broker

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/txmq/txmq/internal/remoting"
)

// Response codes used here, short names for readability.
const (
	respSuccess             = remoting.RespSuccess
	respSystemError         = remoting.RespSystemError
	respMessageIllegal      = remoting.RespMessageIllegal
	respServiceNotAvailable = remoting.RespServiceNotAvailable
	respNoPermission        = remoting.RespNoPermission
	respTopicNotExist       = remoting.RespTopicNotExist
	respPullNotFound        = remoting.RespPullNotFound
	respPullRetryImmediate  = remoting.RespPullRetryImmediately
	respPullOffsetMoved     = remoting.RespPullOffsetMoved
	respQueryNotFound       = remoting.RespQueryNotFound
	respSubscriptionParse   = remoting.RespSubscriptionParseFailed
)

// codeErr returns an error answered with code and the formatted remark.
func codeErr(code int32, format string, args ...any) error {
	return &remoting.CodeError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// headerErr answers a missing or malformed request header field: Java
// answers a header it cannot decode with SYSTEM_ERROR and the reason.
func headerErr(what string, err error) error {
	return &remoting.CodeError{Code: respSystemError, Msg: what + ": bad request header: " + err.Error(), Err: err}
}

// isHeaderErr reports whether err is a missing or malformed ext field.
func isHeaderErr(err error) bool {
	return errors.Is(err, remoting.ErrMissingExtField) || errors.Is(err, remoting.ErrInvalidExtField)
}

// ok returns a SUCCESS response to req.
func ok(req *remoting.Command) *remoting.Command { return req.Reply(respSuccess, "") }

// remoteAddrPort is the connection's peer as a netip.AddrPort (IPv4-mapped
// addresses unmapped), or the zero value (0.0.0.0:0 on the wire).
func remoteAddrPort(c *remoting.Conn) netip.AddrPort {
	if c == nil {
		return netip.AddrPort{}
	}
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
}

package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
)

// NotRunningError is the error of a client that could not reach the
// node's control socket.
type NotRunningError struct {
	Socket string
	Err    error
}

func (e *NotRunningError) Error() string {
	why := e.Err.Error()
	switch {
	case errors.Is(e.Err, os.ErrNotExist):
		why = "no such socket"
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		why = "nothing is listening on the socket"
	case errors.Is(e.Err, os.ErrPermission):
		why = "permission denied"
	default:
		var oe *net.OpError
		if errors.As(e.Err, &oe) && oe.Err != nil {
			why = oe.Err.Error()
		}
	}
	return fmt.Sprintf("node not running (%s: %s)", e.Socket, why)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// RequestError is a request the node refused: its response.
type RequestError struct{ Response Response }

func (e *RequestError) Error() string { return e.Response.Error }

// dial connects to the control socket and sends req; it returns the
// connection, its reader and the node's response.
func dial(ctx context.Context, socket string, req Request) (net.Conn, *bufio.Reader, Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		var se *os.SyscallError
		if errors.As(err, &se) {
			err = se.Err
		}
		return nil, nil, Response{}, &NotRunningError{Socket: socket, Err: err}
	}
	return request(ctx, conn, req)
}

// request sends req on a new control connection and reads the node's
// response. On an error it has closed conn.
func request(ctx context.Context, conn net.Conn, req Request) (net.Conn, *bufio.Reader, Response, error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := writeJSONLine(conn, req); err != nil {
		conn.Close()
		return nil, nil, Response{}, lost(ctx, err)
	}
	br := bufio.NewReader(conn)
	line, err := readLine(br, "answer", MaxResponseLine)
	if err != nil {
		conn.Close()
		return nil, nil, Response{}, lost(ctx, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		conn.Close()
		return nil, nil, Response{}, fmt.Errorf("the node's answer is not understood: %v", err)
	}
	if !resp.OK {
		conn.Close()
		if resp.Error == "" {
			resp.Error = "the node refused the request"
		}
		return nil, nil, resp, &RequestError{Response: resp}
	}
	return conn, br, resp, nil
}

func lost(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("lost the node: %v", err)
}

// ListCalls asks the node at socket for its VCs, in the order of their
// handles.
func ListCalls(ctx context.Context, socket string) ([]CallInfo, error) {
	l, err := ListNodeCalls(ctx, socket)
	return l.Calls, err
}

// CallList is a node's answer to "calls".
type CallList struct {
	Address string // the node's own address; "" if its call manager has none
	Calls   []CallInfo
}

// ListNodeCalls asks the node at socket for its address and its VCs.
func ListNodeCalls(ctx context.Context, socket string) (CallList, error) {
	var l CallList
	resp, err := eachCall(ctx, socket, func(ci CallInfo) error {
		l.Calls = append(l.Calls, ci)
		return nil
	})
	l.Address = resp.Address
	return l, err
}

// EachCall asks the node at socket for its VCs and calls f with each, in
// the order of their handles, as they arrive: one call frame each. An
// error from f stops the listing and is returned.
func EachCall(ctx context.Context, socket string, f func(CallInfo) error) error {
	_, err := eachCall(ctx, socket, f)
	return err
}

// eachCall is EachCall, returning the node's first answer line too.
func eachCall(ctx context.Context, socket string, f func(CallInfo) error) (Response, error) {
	conn, br, resp, err := dial(ctx, socket, Request{Op: OpCalls})
	if err != nil {
		return resp, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for n := 0; ; {
		fr, err := ReadFrame(br)
		if err != nil {
			return resp, lost(ctx, fmt.Errorf("%v after %d of %d VCs", err, n, resp.Count))
		}
		switch fr.Type {
		case FrameCall:
			var ci CallInfo
			if err := json.Unmarshal(fr.Payload, &ci); err != nil {
				return resp, fmt.Errorf("the node's answer is not understood: %v", err)
			}
			n++
			if err := f(ci); err != nil {
				return resp, err
			}
		case FrameClose:
			if n != resp.Count {
				return resp, fmt.Errorf("the node listed %d VCs but announced %d", n, resp.Count)
			}
			return resp, nil
		default:
			return resp, fmt.Errorf("the node's answer is not understood: a %v frame in a list of calls", fr.Type)
		}
	}
}

// QueryStatus asks the node at socket for its status.
func QueryStatus(ctx context.Context, socket string) (NodeStatus, error) {
	conn, _, resp, err := dial(ctx, socket, Request{Op: OpStatus})
	if err != nil {
		return NodeStatus{}, err
	}
	conn.Close()
	if resp.Node == nil {
		return NodeStatus{}, errors.New("the node's answer has no status")
	}
	return *resp.Node, nil
}

// QueryPeers asks the node at socket for its peers, in name order.
func QueryPeers(ctx context.Context, socket string) ([]PeerInfo, error) {
	conn, _, resp, err := dial(ctx, socket, Request{Op: OpPeers})
	if err != nil {
		return nil, err
	}
	conn.Close()
	if resp.Peers == nil {
		return []PeerInfo{}, nil // none: the answer leaves the list out
	}
	return resp.Peers, nil
}

// Bench asks the node at socket to make req.Calls calls to req.Dest,
// req.Concurrency at a time, as its own CoNDIS client (req.Op is set to
// OpBench), and returns the outcome once they are all gone. Cancelling ctx
// stops the bench.
func Bench(ctx context.Context, socket string, req Request) (BenchResult, error) {
	return BenchWithProgress(ctx, socket, req, nil)
}

// BenchWithProgress is Bench, calling progress (if not nil) about once a
// second while the bench runs with how far it has got.
func BenchWithProgress(ctx context.Context, socket string, req Request, progress func(BenchProgress)) (BenchResult, error) {
	req.Op = OpBench
	req.Progress = progress != nil
	conn, br, resp, err := dial(ctx, socket, req)
	if err != nil {
		return BenchResult{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for resp.Progress != nil {
		progress(*resp.Progress)
		line, err := readRequestLine(br)
		if err != nil {
			return BenchResult{}, lost(ctx, err)
		}
		resp = Response{}
		if err := json.Unmarshal(line, &resp); err != nil {
			return BenchResult{}, fmt.Errorf("the node's answer is not understood: %v", err)
		}
		if !resp.OK {
			return BenchResult{}, &RequestError{Response: resp}
		}
	}
	if resp.Bench == nil {
		return BenchResult{}, errors.New("the node's answer has no bench result")
	}
	return *resp.Bench, nil
}

// Session is the client side of a call or listen session.
type Session struct {
	// Response is the node's answer: for a call, the VC, the largest SDU
	// that may be sent and the flowspecs granted.
	Response Response

	conn net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex
}

// DialCall asks the node at socket to make a call (req.Op is set to OpCall).
// The call is up when it returns.
func DialCall(ctx context.Context, socket string, req Request) (*Session, error) {
	req.Op = OpCall
	return dialSession(ctx, socket, req)
}

// DialListen asks the node at socket to listen on req.Service (req.Op is
// set to OpListen). The SAP is registered when it returns.
func DialListen(ctx context.Context, socket string, req Request) (*Session, error) {
	req.Op = OpListen
	return dialSession(ctx, socket, req)
}

func dialSession(ctx context.Context, socket string, req Request) (*Session, error) {
	conn, br, resp, err := dial(ctx, socket, req)
	if err != nil {
		return nil, err
	}
	return &Session{Response: resp, conn: conn, br: br}, nil
}

// Send sends one SDU (a data frame). Safe to call with Recv and End from
// other goroutines.
func (s *Session) Send(sdu []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return WriteFrame(s.conn, FrameData, sdu)
}

// SendOn sends one SDU on call vc of a tagged listen session (a vc data
// frame). Safe to call with Recv and End from other goroutines.
func (s *Session) SendOn(vc string, sdu []byte) error {
	if len(vc) == 0 || len(vc) > 255 {
		return fmt.Errorf("VC name %q: want 1 to 255 octets", vc)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return WriteFrame(s.conn, FrameVcData, AppendVcData(make([]byte, 0, 1+len(vc)+len(sdu)), vc, sdu))
}

// EndCall asks for call vc of a tagged listen session to be closed once
// its sends have completed (a vc end frame); its closed event follows.
func (s *Session) EndCall(vc string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return WriteFrame(s.conn, FrameVcEnd, []byte(vc))
}

// End says that no more data will come (an end frame): the node closes the
// call after lingering, or ends the listen session (a tagged one only
// deregisters its SAP; it ends once its calls are gone).
func (s *Session) End() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return WriteFrame(s.conn, FrameEnd, nil)
}

// Recv returns the next frame from the node. After a close frame the node
// closes the connection.
func (s *Session) Recv() (Frame, error) { return ReadFrame(s.br) }

// Close closes the connection. Closing a call session without End closes
// the call at once; closing a listen session ends it.
func (s *Session) Close() error { return s.conn.Close() }

// ParseClose decodes the payload of a close frame.
func ParseClose(payload []byte) (CloseInfo, error) {
	var info CloseInfo
	if err := json.Unmarshal(payload, &info); err != nil {
		return CloseInfo{}, fmt.Errorf("the node's close frame is not understood: %v", err)
	}
	return info, nil
}

// ParseEvent decodes the payload of an event frame.
func ParseEvent(payload []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return Event{}, fmt.Errorf("the node's event frame is not understood: %v", err)
	}
	return ev, nil
}

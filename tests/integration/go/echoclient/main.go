// SPDX-License-Identifier: Apache-2.0
// The Go reference client: drives the shim's echo fixture service with containerd's own ttrpc
// library (v1.1.1, as containerd 1.6 links it) and prints one TAP line per check.
//
//	echoclient -address /path/to/shim.sock [-prefix P]
//
// -prefix is the `prefix` the echo fixture was configured with. Exits 1 when a check fails.

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	service    = "cshim.fixture.v1.Echo"
	maxMessage = 4 << 20
	callLimit  = 20 * time.Second
)

var (
	address = flag.String("address", "", "shim ttrpc socket path")
	prefix  = flag.String("prefix", "", "prefix the echo fixture was configured with")

	nChecks, nFailed int
)

// check prints one TAP line; err == nil means the check passed.
func check(name string, err error) {
	nChecks++
	if err != nil {
		nFailed++
		fmt.Printf("not ok %d - %s\n", nChecks, name)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Printf("# %s\n", line)
		}
		return
	}
	fmt.Printf("ok %d - %s\n", nChecks, name)
}

func dial() (*ttrpc.Client, error) {
	conn, err := net.Dial("unix", *address)
	if err != nil {
		return nil, err
	}
	return ttrpc.NewClient(conn), nil
}

// callCtx is what containerd hands its shim clients: a namespace on the context (sent as the
// containerd-namespace-ttrpc metadata) and a deadline.
func callCtx(ns string) (context.Context, context.CancelFunc) {
	ctx := namespaces.WithNamespace(context.Background(), ns)
	return context.WithTimeout(ctx, callLimit)
}

func echo(c *ttrpc.Client, ns, text string) (*EchoResponse, error) {
	ctx, cancel := callCtx(ns)
	defer cancel()
	var resp EchoResponse
	if err := c.Call(ctx, service, "Echo", &EchoRequest{Text: text}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func expectEcho(c *ttrpc.Client, ns, text string) error {
	resp, err := echo(c, ns, text)
	if err != nil {
		return err
	}
	if resp.Text != *prefix+text {
		return fmt.Errorf("text %q, want %q", resp.Text, *prefix+text)
	}
	if resp.Namespace != ns {
		return fmt.Errorf("namespace %q, want %q", resp.Namespace, ns)
	}
	return nil
}

// expectStatus checks that err is a gRPC status with the given code and message (message
// "" = any).
func expectStatus(err error, code codes.Code, message string) error {
	if err == nil {
		return fmt.Errorf("call succeeded, want %v", code)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("error is not a gRPC status: %v", err)
	}
	if st.Code() != code {
		return fmt.Errorf("code %v (%q), want %v", st.Code(), st.Message(), code)
	}
	if message != "" && st.Message() != message {
		return fmt.Errorf("message %q, want %q", st.Message(), message)
	}
	return nil
}

func checkEcho(c *ttrpc.Client) {
	check("Echo returns the text and the namespace from the context",
		expectEcho(c, "integration-go", "hello from go"))
	check("Echo sees another namespace on the same connection",
		expectEcho(c, "k8s.io", "second"))
}

// checkConcurrency sends slow Sleep calls and then fast Echo calls on one connection and on
// a second one, and records the order in which the answers arrive: every fast answer must
// come before any slow one, which a server handling calls one at a time cannot do.
func checkConcurrency(c *ttrpc.Client) {
	const nSlow, nFast = 10, 40
	c2, err := dial()
	if err != nil {
		check("second connection", err)
		return
	}
	defer c2.Close()

	var (
		mu    sync.Mutex
		order []string
		errs  []error
		wg    sync.WaitGroup
	)
	done := func(kind string, err error) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, kind)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s call: %w", kind, err))
		}
	}
	start := time.Now()
	for i := 0; i < nSlow; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := callCtx("slow")
			defer cancel()
			var resp EchoResponse
			text := fmt.Sprintf("slow %d", i)
			err := c.Call(ctx, service, "Sleep", &SleepRequest{Text: text, DelayMs: 500}, &resp)
			if err == nil && resp.Text != *prefix+text {
				err = fmt.Errorf("text %q, want %q", resp.Text, *prefix+text)
			}
			done("slow", err)
		}(i)
	}
	// Give the slow requests a head start onto the wire; correctness does not depend on it,
	// it only makes the check stricter.
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < nFast; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			conn := c
			if i%2 == 1 {
				conn = c2
			}
			done("fast", expectEcho(conn, "fast", fmt.Sprintf("fast %d", i)))
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)

	var err2 error
	if len(errs) > 0 {
		err2 = errs[0]
	} else {
		firstSlow := -1
		lastFast := -1
		for i, kind := range order {
			if kind == "slow" && firstSlow < 0 {
				firstSlow = i
			}
			if kind == "fast" {
				lastFast = i
			}
		}
		if firstSlow >= 0 && lastFast > firstSlow {
			err2 = fmt.Errorf("a fast call finished after a slow one: order %v", order)
		} else if elapsed > 5*time.Second {
			// Ten 500 ms sleeps served one after another would take 5 s.
			err2 = fmt.Errorf("slow calls were not served concurrently: %v", elapsed)
		}
	}
	check(fmt.Sprintf("%d concurrent calls: every fast Echo answered before any 500 ms Sleep",
		nSlow+nFast), err2)
}

func checkUnimplemented(c *ttrpc.Client) {
	ctx, cancel := callCtx("integration-go")
	defer cancel()
	var resp EchoResponse
	err := c.Call(ctx, service, "NoSuchMethod", &EchoRequest{Text: "x"}, &resp)
	check("unknown method is Unimplemented `method NoSuchMethod`",
		expectStatus(err, codes.Unimplemented, "method NoSuchMethod"))

	err = c.Call(ctx, "cshim.fixture.v1.Nope", "Echo", &EchoRequest{Text: "x"}, &resp)
	check("unknown service is Unimplemented `service cshim.fixture.v1.Nope`",
		expectStatus(err, codes.Unimplemented, "service cshim.fixture.v1.Nope"))
	if err != nil {
		check("Unimplemented maps to errdefs.ErrNotImplemented",
			func() error {
				if !errdefs.IsNotImplemented(errdefs.FromGRPC(err)) {
					return fmt.Errorf("errdefs.FromGRPC(%v) is not ErrNotImplemented", err)
				}
				return nil
			}())
	}
}

func checkFail(c *ttrpc.Client) {
	ctx, cancel := callCtx("integration-go")
	defer cancel()
	err := c.Call(ctx, service, "Fail", &FailRequest{Code: int32(codes.NotFound), Message: "no such thing"}, &Empty{})
	check("Fail(5) is NotFound with the message", expectStatus(err, codes.NotFound, "no such thing"))
	check("NotFound maps to errdefs.ErrNotFound", func() error {
		if err == nil || !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
			return fmt.Errorf("errdefs.FromGRPC(%v) is not ErrNotFound", err)
		}
		return nil
	}())

	err = c.Call(ctx, service, "Fail", &FailRequest{Code: 0}, &Empty{})
	check("Fail(0) succeeds with Empty", err)
}

func checkLimits(c *ttrpc.Client) {
	ctx, cancel := callCtx("integration-go")
	defer cancel()

	// ttrpc 1.1.1 sends an oversized request as is; the server must discard it, answer
	// ResourceExhausted and keep the connection.
	var resp EchoResponse
	err := c.Call(ctx, service, "Echo", &EchoRequest{Text: strings.Repeat("x", maxMessage+1)}, &resp)
	if err != nil && !isStatus(err) {
		check("oversized request (client refused it locally)", nil)
		fmt.Printf("# the ttrpc client refused to send it: %v\n", err)
	} else {
		check("request over 4 MiB is ResourceExhausted",
			expectStatus(err, codes.ResourceExhausted, ""))
	}
	check("connection still works after the oversized request",
		expectEcho(c, "integration-go", "after oversized"))

	// An answer over 4 MiB is refused by the server itself.
	var big BigResponse
	err = c.Call(ctx, service, "Big", &BigRequest{Size: 5 << 20}, &big)
	check("Big(5 MiB): answer over 4 MiB is ResourceExhausted",
		expectStatus(err, codes.ResourceExhausted, ""))
	check("connection still works after the oversized answer",
		expectEcho(c, "integration-go", "after big"))

	big = BigResponse{}
	err = c.Call(ctx, service, "Big", &BigRequest{Size: 3 << 20}, &big)
	if err == nil {
		want := make([]byte, 3<<20)
		for i := range want {
			want[i] = byte(i % 251)
		}
		if !bytes.Equal(big.Data, want) {
			err = fmt.Errorf("got %d bytes, not the expected pattern", len(big.Data))
		}
	}
	check("Big(3 MiB) arrives intact", err)
}

func isStatus(err error) bool {
	_, ok := status.FromError(err)
	return ok
}

// checkManyConnections opens many connections at once, each making a few calls.
func checkManyConnections() {
	const nConns = 32
	var wg sync.WaitGroup
	errs := make(chan error, nConns)
	for i := 0; i < nConns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for j := 0; j < 5; j++ {
				if err := expectEcho(c, fmt.Sprintf("ns-%d", i), fmt.Sprintf("conn %d call %d", i, j)); err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	check(fmt.Sprintf("%d connections at once, 5 calls each", nConns), <-errs)
}

func main() {
	flag.Parse()
	if *address == "" {
		fmt.Fprintln(os.Stderr, "echoclient: -address is required")
		os.Exit(2)
	}
	c, err := dial()
	check("connect to "+*address, err)
	if err != nil {
		fmt.Printf("1..%d\n", nChecks)
		os.Exit(1)
	}
	defer c.Close()

	checkEcho(c)
	checkConcurrency(c)
	checkUnimplemented(c)
	checkFail(c)
	checkLimits(c)
	checkManyConnections()

	fmt.Printf("1..%d\n", nChecks)
	if nFailed > 0 {
		os.Exit(1)
	}
}

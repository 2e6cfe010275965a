// SPDX-License-Identifier: Apache-2.0
// A containerd 1.6 task client (the generated ttrpc TaskService from Debian's containerd
// package) driving a shim directly: exec processes with and without a terminal, ResizePty,
// CloseIO, Pids, exec Wait/State/Delete and their error codes, a terminal init. Prints one TAP
// line per check; exits 1 when one fails.
//
//	taskclient -address SOCKET -bundle DIR -work DIR -namespace NS -id ID
//
// DIR must hold a busybox rootfs and a config.json (from `runc spec`); the client edits it.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/namespaces"
	runcopts "github.com/containerd/containerd/runtime/v2/runc/options"
	taskapi "github.com/containerd/containerd/runtime/v2/task"
	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"
	"github.com/gogo/protobuf/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	callLimit   = 30 * time.Second
	processType = "types.containerd.io/opencontainers/runtime-spec/1/Process"
)

var (
	address   = flag.String("address", "", "shim ttrpc socket path")
	bundle    = flag.String("bundle", "", "bundle with rootfs/ and config.json")
	work      = flag.String("work", "", "directory for FIFOs and the second bundle")
	namespace = flag.String("namespace", "default", "containerd namespace")
	id        = flag.String("id", "taskclient", "container id")

	svc              taskapi.TaskService
	nChecks, nFailed int
	fifoSeq          int
)

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

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(namespaces.WithNamespace(context.Background(), *namespace), callLimit)
}

func expectCode(err error, code codes.Code) error {
	if err == nil {
		return fmt.Errorf("call succeeded, want %v", code)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("not a status: %v", err)
	}
	if st.Code() != code {
		return fmt.Errorf("code %v (%q), want %v", st.Code(), st.Message(), code)
	}
	return nil
}

// ---- FIFOs, as containerd's client makes them ----

func mkfifo(name string) string {
	fifoSeq++
	p := filepath.Join(*work, fmt.Sprintf("%d-%s", fifoSeq, name))
	if err := syscall.Mkfifo(p, 0600); err != nil {
		panic(err)
	}
	return p
}

type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// read copies what the shim writes into the FIFO (the open waits for the shim's writer).
func read(path string) *output {
	o := &output{}
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			return
		}
		io.Copy(o, f)
		f.Close()
	}()
	return o
}

func (o *output) waitFor(texts ...string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		s := o.String()
		for _, t := range texts {
			all = all && strings.Contains(s, t)
		}
		if all {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("output %q lacks one of %q", o.String(), texts)
}

// ---- calls ----

func processSpec(terminal bool, args ...string) *types.Any {
	spec := map[string]interface{}{
		"terminal": terminal,
		"user":     map[string]int{"uid": 0, "gid": 0},
		"args":     args,
		"env":      []string{"PATH=/bin:/usr/bin", "TERM=xterm"},
		"cwd":      "/",
	}
	b, _ := json.Marshal(spec)
	return &types.Any{TypeUrl: processType, Value: b}
}

func exec(execID string, terminal bool, stdin, stdout, stderr string, args ...string) error {
	c, cancel := ctx()
	defer cancel()
	_, err := svc.Exec(c, &taskapi.ExecProcessRequest{ID: *id, ExecID: execID, Terminal: terminal,
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Spec: processSpec(terminal, args...)})
	return err
}

func start(cid, execID string) (uint32, error) {
	c, cancel := ctx()
	defer cancel()
	r, err := svc.Start(c, &taskapi.StartRequest{ID: cid, ExecID: execID})
	if err != nil {
		return 0, err
	}
	if r.Pid == 0 {
		return 0, errors.New("Start returned pid 0")
	}
	return r.Pid, nil
}

type waitResult struct {
	status uint32
	err    error
}

// wait calls Wait at once (as containerd does before Start) and returns its result later.
func wait(cid, execID string) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		c := namespaces.WithNamespace(context.Background(), *namespace)
		c, cancel := context.WithTimeout(c, 60*time.Second)
		defer cancel()
		r, err := svc.Wait(c, &taskapi.WaitRequest{ID: cid, ExecID: execID})
		if err != nil {
			ch <- waitResult{0, err}
			return
		}
		ch <- waitResult{r.ExitStatus, nil}
	}()
	// let the Wait request reach the shim first
	time.Sleep(50 * time.Millisecond)
	return ch
}

func expectExit(ch <-chan waitResult, want uint32) error {
	r := <-ch
	if r.err != nil {
		return fmt.Errorf("wait: %v", r.err)
	}
	if r.status != want {
		return fmt.Errorf("exit status %d, want %d", r.status, want)
	}
	return nil
}

func resize(cid, execID string, w, h uint32) error {
	c, cancel := ctx()
	defer cancel()
	_, err := svc.ResizePty(c, &taskapi.ResizePtyRequest{ID: cid, ExecID: execID, Width: w, Height: h})
	return err
}

func closeStdin(cid, execID string) error {
	c, cancel := ctx()
	defer cancel()
	_, err := svc.CloseIO(c, &taskapi.CloseIORequest{ID: cid, ExecID: execID, Stdin: true})
	return err
}

func kill(cid, execID string, sig uint32) error {
	c, cancel := ctx()
	defer cancel()
	_, err := svc.Kill(c, &taskapi.KillRequest{ID: cid, ExecID: execID, Signal: sig})
	return err
}

func del(cid, execID string) (*taskapi.DeleteResponse, error) {
	c, cancel := ctx()
	defer cancel()
	return svc.Delete(c, &taskapi.DeleteRequest{ID: cid, ExecID: execID})
}

func state(cid, execID string) (*taskapi.StateResponse, error) {
	c, cancel := ctx()
	defer cancel()
	return svc.State(c, &taskapi.StateRequest{ID: cid, ExecID: execID})
}

// writeStdin opens the stdin FIFO (the shim reads it once the process starts) and writes.
func writeStdin(path, text string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ---- the bundle ----

func editSpec(dir string, root string, terminal bool, args ...string) error {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]interface{}
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	p := spec["process"].(map[string]interface{})
	p["terminal"] = terminal
	p["args"] = args
	p["env"] = []string{"PATH=/bin:/usr/bin", "TERM=xterm"}
	spec["root"] = map[string]interface{}{"path": root, "readonly": true}
	out, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0644)
}

// ---- checks ----

func checkExecTerminal() error {
	in, out := mkfifo("t1-in"), mkfifo("t1-out")
	o := read(out)
	if err := exec("t1", true, in, out, "", "/bin/sh", "-c", `read x; stty size; echo "got:$x"; exit 7`); err != nil {
		return fmt.Errorf("exec: %v", err)
	}
	w := wait(*id, "t1")
	pid, err := start(*id, "t1")
	if err != nil {
		return fmt.Errorf("start: %v", err)
	}
	if err := resize(*id, "t1", 120, 40); err != nil {
		return fmt.Errorf("resize: %v", err)
	}
	f, err := writeStdin(in, "hello\n")
	if err != nil {
		return err
	}
	defer f.Close()
	if err := o.waitFor("got:hello", "40 120"); err != nil {
		return err
	}
	if err := expectExit(w, 7); err != nil {
		return err
	}
	if err := expectCode(resize(*id, "t1", 80, 24), codes.Unknown); err != nil {
		return fmt.Errorf("resize of a stopped exec: %v", err)
	}
	st, err := state(*id, "t1")
	if err != nil {
		return fmt.Errorf("state: %v", err)
	}
	// (containerd-shim-runc-v2 leaves exec_id empty; cshim fills it in)
	if st.Status != task.StatusStopped || !st.Terminal || st.ExitStatus != 7 || st.Pid != pid ||
		(st.ExecID != "t1" && st.ExecID != "") || st.ID != "t1" {
		return fmt.Errorf("state: %+v", st)
	}
	d, err := del(*id, "t1")
	if err != nil {
		return fmt.Errorf("delete: %v", err)
	}
	if d.Pid != pid || d.ExitStatus != 7 || d.ExitedAt.IsZero() {
		return fmt.Errorf("delete: %+v", d)
	}
	if _, err := del(*id, "t1"); expectCode(err, codes.NotFound) != nil {
		return fmt.Errorf("second delete: %v", expectCode(err, codes.NotFound))
	}
	if _, err := state(*id, "t1"); expectCode(err, codes.NotFound) != nil {
		return fmt.Errorf("state after delete: %v", expectCode(err, codes.NotFound))
	}
	return nil
}

func checkCloseIOTerminal() error {
	in, out := mkfifo("t2-in"), mkfifo("t2-out")
	o := read(out)
	if err := exec("t2", true, in, out, "", "/bin/cat"); err != nil {
		return fmt.Errorf("exec: %v", err)
	}
	w := wait(*id, "t2")
	if _, err := start(*id, "t2"); err != nil {
		return fmt.Errorf("start: %v", err)
	}
	f, err := writeStdin(in, "abc\n")
	if err != nil {
		return err
	}
	if err := o.waitFor("abc\r\nabc\r\n"); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if err := closeStdin(*id, "t2"); err != nil {
		return fmt.Errorf("closeio: %v", err)
	}
	// the console is shut down: cat, the session leader, gets SIGHUP
	if err := expectExit(w, 128+uint32(syscall.SIGHUP)); err != nil {
		return err
	}
	_, err = del(*id, "t2")
	return err
}

func checkCloseIOPipe() error {
	in, out, errf := mkfifo("p1-in"), mkfifo("p1-out"), mkfifo("p1-err")
	o := read(out)
	read(errf)
	if err := exec("p1", false, in, out, errf, "/bin/cat"); err != nil {
		return fmt.Errorf("exec: %v", err)
	}
	w := wait(*id, "p1")
	if _, err := start(*id, "p1"); err != nil {
		return fmt.Errorf("start: %v", err)
	}
	f, err := writeStdin(in, "data\n")
	if err != nil {
		return err
	}
	f.Close()
	if err := o.waitFor("data\n"); err != nil {
		return err
	}
	select {
	case r := <-w:
		return fmt.Errorf("cat ended before CloseIO: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	if err := closeStdin(*id, "p1"); err != nil {
		return fmt.Errorf("closeio: %v", err)
	}
	if err := expectExit(w, 0); err != nil {
		return err
	}
	if _, err := del(*id, "p1"); err != nil {
		return err
	}
	if o.String() != "data\n" {
		return fmt.Errorf("output %q", o.String())
	}
	return nil
}

func checkResizeWithoutTerminal() error {
	if err := resize(*id, "", 80, 24); err != nil {
		return fmt.Errorf("resize of a process without a terminal: %v", err)
	}
	if err := expectCode(resize(*id, "nope", 80, 24), codes.NotFound); err != nil {
		return fmt.Errorf("unknown exec: %v", err)
	}
	return expectCode(resize("nope", "", 80, 24), codes.NotFound)
}

func checkPidsAndKill() error {
	if err := exec("s1", false, "", "", "", "/bin/sleep", "100"); err != nil {
		return fmt.Errorf("exec: %v", err)
	}
	if err := expectCode(kill(*id, "s1", 9), codes.FailedPrecondition); err != nil {
		return fmt.Errorf("kill before start: %v", err)
	}
	pid, err := start(*id, "s1")
	if err != nil {
		return fmt.Errorf("start: %v", err)
	}
	c, cancel := ctx()
	defer cancel()
	r, err := svc.Pids(c, &taskapi.PidsRequest{ID: *id})
	if err != nil {
		return fmt.Errorf("pids: %v", err)
	}
	found := false
	for _, p := range r.Processes {
		if p.Pid != pid {
			continue
		}
		if p.Info == nil || p.Info.TypeUrl != "containerd.runc.v1.ProcessDetails" {
			return fmt.Errorf("exec's info: %+v", p.Info)
		}
		var d runcopts.ProcessDetails
		if err := proto.Unmarshal(p.Info.Value, &d); err != nil {
			return err
		}
		if d.ExecID != "s1" {
			return fmt.Errorf("exec id %q", d.ExecID)
		}
		found = true
	}
	if !found {
		return fmt.Errorf("exec pid %d not in %+v", pid, r.Processes)
	}
	w := wait(*id, "s1")
	if err := expectCode(func() error { _, err := del(*id, "s1"); return err }(), codes.Unknown); err != nil {
		return fmt.Errorf("delete of a running exec: %v", err)
	}
	if err := kill(*id, "s1", 9); err != nil {
		return fmt.Errorf("kill: %v", err)
	}
	if err := expectExit(w, 137); err != nil {
		return err
	}
	if err := expectCode(kill(*id, "s1", 9), codes.NotFound); err != nil {
		return fmt.Errorf("kill after exit: %v", err)
	}
	_, err = del(*id, "s1")
	return err
}

func checkExecIDs() error {
	if err := exec("dup", false, "", "", "", "/bin/true"); err != nil {
		return err
	}
	if err := expectCode(exec("dup", false, "", "", "", "/bin/true"), codes.AlreadyExists); err != nil {
		return fmt.Errorf("duplicate: %v", err)
	}
	if err := expectCode(exec("../x", false, "", "", "", "/bin/true"), codes.InvalidArgument); err != nil {
		return fmt.Errorf("bad id: %v", err)
	}
	if _, err := del(*id, "dup"); err != nil {
		return fmt.Errorf("delete of a created exec: %v", err)
	}
	c, cancel := ctx()
	defer cancel()
	_, err := svc.Exec(c, &taskapi.ExecProcessRequest{ID: "nope", ExecID: "x", Spec: processSpec(false, "true")})
	return expectCode(err, codes.NotFound)
}

func checkTerminalInit() error {
	dir := filepath.Join(*work, "bundle-tty")
	if err := os.MkdirAll(dir, 0700); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(*bundle, "config.json"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0644); err != nil {
		return err
	}
	if err := editSpec(dir, filepath.Join(*bundle, "rootfs"), true, "/bin/sh", "-c",
		`read x; tty; stty size; echo "init-got:$x"`); err != nil {
		return err
	}
	cid := *id + "-tty"
	in, out := mkfifo("i-in"), mkfifo("i-out")
	o := read(out)
	c, cancel := ctx()
	defer cancel()
	r, err := svc.Create(c, &taskapi.CreateTaskRequest{ID: cid, Bundle: dir, Terminal: true,
		Stdin: in, Stdout: out})
	if err != nil {
		return fmt.Errorf("create: %v", err)
	}
	if err := resize(cid, "", 100, 30); err != nil {
		return fmt.Errorf("resize: %v", err)
	}
	w := wait(cid, "")
	if pid, err := start(cid, ""); err != nil || pid != r.Pid {
		return fmt.Errorf("start: %d %v", pid, err)
	}
	f, err := writeStdin(in, "yo\n")
	if err != nil {
		return err
	}
	defer f.Close()
	if err := o.waitFor("init-got:yo", "30 100", "/dev/pts/"); err != nil {
		return err
	}
	if err := expectExit(w, 0); err != nil {
		return err
	}
	_, err = del(cid, "")
	return err
}

func run() error {
	conn, err := net.Dial("unix", *address)
	if err != nil {
		return err
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	svc = taskapi.NewTaskClient(client)

	if err := editSpec(*bundle, "rootfs", false, "/bin/sleep", "1000"); err != nil {
		return err
	}
	c, cancel := ctx()
	defer cancel()
	cr, err := svc.Create(c, &taskapi.CreateTaskRequest{ID: *id, Bundle: *bundle})
	if err != nil {
		return fmt.Errorf("create: %v", err)
	}
	if pid, err := start(*id, ""); err != nil || pid != cr.Pid {
		return fmt.Errorf("start: %d %v", pid, err)
	}
	initWait := wait(*id, "")

	check("exec with a terminal: ResizePty, input through the pty, Wait/State/Delete", checkExecTerminal())
	check("CloseIO on a terminal exec hangs it up, as the runc shim does", checkCloseIOTerminal())
	check("CloseIO on a pipe exec gives it EOF", checkCloseIOPipe())
	check("ResizePty without a terminal is a no-op; unknown ids are NotFound", checkResizeWithoutTerminal())
	check("Pids names the exec (ProcessDetails); Kill/Delete codes of an exec", checkPidsAndKill())
	check("exec ids: duplicate AlreadyExists, bad InvalidArgument, unknown container NotFound", checkExecIDs())
	check("terminal init: ResizePty before Start, input through the pty", checkTerminalInit())

	if err := kill(*id, "", 9); err != nil {
		return fmt.Errorf("kill init: %v", err)
	}
	if err := expectExit(initWait, 137); err != nil {
		return err
	}
	if _, err := del(*id, ""); err != nil {
		return fmt.Errorf("delete init: %v", err)
	}
	c2, cancel2 := ctx()
	defer cancel2()
	svc.Shutdown(c2, &taskapi.ShutdownRequest{ID: *id})
	return nil
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Printf("Bail out! %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("1..%d\n", nChecks)
	if nFailed > 0 {
		os.Exit(1)
	}
}

// SPDX-License-Identifier: Apache-2.0

// A small CRI client for the CRI test (run.sh beside this directory), built in GOPATH mode from
// Debian's packaged CRI API (golang-k8s-cri-api-dev) and gRPC. One call per invocation:
//
//	cri-client -address SOCK [-timeout D] <command> [args]
//
//	version                          runtime name and version
//	runp [-handler H] POD.json       RunPodSandbox; prints the sandbox id
//	create POD_ID CTR.json POD.json  CreateContainer; prints the container id
//	start ID | stop ID | rm ID       StartContainer, StopContainer (timeout 0), RemoveContainer
//	stopp ID | rmp ID                StopPodSandbox, RemovePodSandbox
//	status ID | podstatus ID | stats ID
//	                                 ContainerStatus, PodSandboxStatus, ContainerStats as JSON
//	exec-sync ID CMD...              ExecSync: the command's stdout and stderr, its exit code
//	exec ID CMD...                   Exec through the streaming server (WebSocket,
//	                                 v4.channel.k8s.io): stdout, stderr, exit code
//
// Configs are CRI messages in protobuf JSON.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cri-client: "+format+"\n", args...)
	os.Exit(125)
}

func readMessage(path string, m proto.Message) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	if err := protojson.Unmarshal(data, m); err != nil {
		fail("%s: %v", path, err)
	}
}

// printMessage prints m as indented JSON with one space after each colon. protojson's own
// layout is deliberately unstable (it adds a second space or not, by a hash of the binary), and
// run.sh greps the output, so encoding/json lays it out again.
func printMessage(m proto.Message) {
	out, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		fail("%v", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "  "); err != nil {
		fail("%v", err)
	}
	fmt.Println(buf.String())
}

func need(args []string, n int, usage string) {
	if len(args) < n {
		fail("usage: %s", usage)
	}
}

// exec through the streaming server: WebSocket with the v4 channel protocol, where each binary
// message starts with its channel (1 stdout, 2 stderr, 3 the final status as JSON).
func streamExec(rawURL string) int {
	u, err := url.Parse(rawURL)
	if err != nil {
		fail("exec url %q: %v", rawURL, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	cfg, err := websocket.NewConfig(u.String(), "http://localhost/")
	if err != nil {
		fail("%v", err)
	}
	cfg.Protocol = []string{"v4.channel.k8s.io"}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		fail("dial %s: %v", u, err)
	}
	defer ws.Close()
	code := -1
	for {
		var msg []byte
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			if err == io.EOF {
				break
			}
			fail("receive: %v", err)
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case 1:
			os.Stdout.Write(msg[1:])
		case 2:
			os.Stderr.Write(msg[1:])
		case 3:
			if len(msg) == 1 {
				continue
			}
			var st struct {
				Status  string `json:"status"`
				Message string `json:"message"`
				Details struct {
					Causes []struct {
						Reason  string `json:"reason"`
						Message string `json:"message"`
					} `json:"causes"`
				} `json:"details"`
			}
			if err := json.Unmarshal(msg[1:], &st); err != nil {
				fail("status %q: %v", msg[1:], err)
			}
			if st.Status == "Success" {
				code = 0
				continue
			}
			for _, c := range st.Details.Causes {
				if c.Reason == "ExitCode" {
					if n, err := strconv.Atoi(c.Message); err == nil {
						code = n
					}
				}
			}
			if code < 0 {
				fail("exec failed: %s", st.Message)
			}
		}
	}
	if code < 0 {
		fail("the stream ended without a status")
	}
	return code
}

func main() {
	address := flag.String("address", "", "containerd's socket (unix path)")
	timeout := flag.Duration("timeout", 2*time.Minute, "deadline of the call")
	flag.Parse()
	args := flag.Args()
	if *address == "" || len(args) == 0 {
		fail("usage: cri-client -address SOCK <command> [args]")
	}
	conn, err := grpc.NewClient("unix://"+*address,
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail("%v", err)
	}
	defer conn.Close()
	rt := runtime.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	cmd, args := args[0], args[1:]
	switch cmd {
	case "version":
		r, err := rt.Version(ctx, &runtime.VersionRequest{})
		if err != nil {
			fail("Version: %v", err)
		}
		fmt.Println(r.RuntimeName, r.RuntimeVersion, r.RuntimeApiVersion)
	case "runp":
		fs := flag.NewFlagSet("runp", flag.ExitOnError)
		handler := fs.String("handler", "", "runtime handler (RuntimeClass)")
		fs.Parse(args)
		need(fs.Args(), 1, "runp [-handler H] POD.json")
		pod := &runtime.PodSandboxConfig{}
		readMessage(fs.Arg(0), pod)
		r, err := rt.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: pod, RuntimeHandler: *handler})
		if err != nil {
			fail("RunPodSandbox: %v", err)
		}
		fmt.Println(r.PodSandboxId)
	case "create":
		need(args, 3, "create POD_ID CTR.json POD.json")
		c := &runtime.ContainerConfig{}
		pod := &runtime.PodSandboxConfig{}
		readMessage(args[1], c)
		readMessage(args[2], pod)
		r, err := rt.CreateContainer(ctx, &runtime.CreateContainerRequest{
			PodSandboxId: args[0], Config: c, SandboxConfig: pod})
		if err != nil {
			fail("CreateContainer: %v", err)
		}
		fmt.Println(r.ContainerId)
	case "start":
		need(args, 1, "start ID")
		if _, err := rt.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: args[0]}); err != nil {
			fail("StartContainer: %v", err)
		}
	case "stop":
		need(args, 1, "stop ID")
		if _, err := rt.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: args[0]}); err != nil {
			fail("StopContainer: %v", err)
		}
	case "rm":
		need(args, 1, "rm ID")
		if _, err := rt.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: args[0]}); err != nil {
			fail("RemoveContainer: %v", err)
		}
	case "stopp":
		need(args, 1, "stopp ID")
		if _, err := rt.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: args[0]}); err != nil {
			fail("StopPodSandbox: %v", err)
		}
	case "rmp":
		need(args, 1, "rmp ID")
		if _, err := rt.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: args[0]}); err != nil {
			fail("RemovePodSandbox: %v", err)
		}
	case "status":
		need(args, 1, "status ID")
		r, err := rt.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: args[0]})
		if err != nil {
			fail("ContainerStatus: %v", err)
		}
		printMessage(r.Status)
	case "podstatus":
		need(args, 1, "podstatus ID")
		r, err := rt.PodSandboxStatus(ctx, &runtime.PodSandboxStatusRequest{PodSandboxId: args[0]})
		if err != nil {
			fail("PodSandboxStatus: %v", err)
		}
		printMessage(r.Status)
	case "stats":
		need(args, 1, "stats ID")
		r, err := rt.ContainerStats(ctx, &runtime.ContainerStatsRequest{ContainerId: args[0]})
		if err != nil {
			fail("ContainerStats: %v", err)
		}
		printMessage(r.Stats)
	case "exec-sync":
		need(args, 2, "exec-sync ID CMD...")
		r, err := rt.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: args[0], Cmd: args[1:], Timeout: 60})
		if err != nil {
			fail("ExecSync: %v", err)
		}
		os.Stdout.Write(r.Stdout)
		os.Stderr.Write(r.Stderr)
		os.Exit(int(r.ExitCode))
	case "exec":
		need(args, 2, "exec ID CMD...")
		r, err := rt.Exec(ctx, &runtime.ExecRequest{ContainerId: args[0], Cmd: args[1:], Stdout: true, Stderr: true})
		if err != nil {
			fail("Exec: %v", err)
		}
		os.Exit(streamExec(r.Url))
	default:
		fail("unknown command %q", cmd)
	}
}

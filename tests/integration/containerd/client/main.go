// SPDX-License-Identifier: Apache-2.0
// A containerd Go client for what ctr 1.6 cannot do against a shim: Update (no `ctr task
// update`), containers created with runtime options (containerd.runc.v1.Options for a
// non-runc runtime name), and a task created from a checkpoint descriptor. Used by
// checks-task-control.sh; prints what happened, exits 1 on an unexpected failure.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/runtime/v2/runc/options"
	gogotypes "github.com/gogo/protobuf/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/pelletier/go-toml"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "client: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	address := flag.String("address", "", "containerd socket")
	ns := flag.String("namespace", "default", "containerd namespace")
	id := flag.String("id", "", "container id")
	runtime := flag.String("runtime", "io.containerd.cshim.v2", "containerd runtime name")
	rootfs := flag.String("rootfs", "", "rootfs directory (run, restore)")
	memory := flag.Int64("memory", 0, "update: new memory limit in bytes")
	pids := flag.Int64("pids", 0, "update: new pids limit")
	optsJSON := flag.String("options", "{}", "run: containerd.runc.v1.Options as JSON (protobuf field names: binary_name, io_uid, ...)")
	fifoDir := flag.String("fifo-dir", "", "run: directory for the stdio FIFOs")
	optsTOML := flag.String("options-toml", "", "run: a RuntimeClass `options` table (TOML file), sent as runtimeoptions.v1.Options.config_body the way containerd 1.7's CRI plugin writes it")
	flag.Parse()
	if *address == "" || *id == "" || flag.NArg() != 1 {
		die("usage: client -address SOCK -namespace NS -id ID [flags] update|run|restore")
	}
	client, err := containerd.New(*address, containerd.WithTimeout(10*time.Second))
	if err != nil {
		die("connect: %v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), *ns), 60*time.Second)
	defer cancel()

	switch flag.Arg(0) {
	case "update":
		update(ctx, client, *id, *memory, *pids)
	case "run":
		run(ctx, client, *id, *runtime, *rootfs, *optsJSON, *optsTOML, *fifoDir)
	case "restore":
		restore(ctx, client, *id, *runtime, *rootfs)
	default:
		die("unknown action %q", flag.Arg(0))
	}
}

// update changes the limits of a running task with Task.Update (LinuxResources JSON).
func update(ctx context.Context, client *containerd.Client, id string, memory, pids int64) {
	c, err := client.LoadContainer(ctx, id)
	if err != nil {
		die("load %s: %v", id, err)
	}
	t, err := c.Task(ctx, nil)
	if err != nil {
		die("task %s: %v", id, err)
	}
	res := &specs.LinuxResources{}
	if memory > 0 {
		res.Memory = &specs.LinuxMemory{Limit: &memory}
	}
	if pids > 0 {
		res.Pids = &specs.LinuxPids{Limit: pids}
	}
	if err := t.Update(ctx, containerd.WithResources(res)); err != nil {
		die("update %s: %v", id, err)
	}
	fmt.Println("updated")
}

// criConfigBody marshals a TOML options table as containerd 1.7's CRI plugin does for a runtime
// type other than runc's (generateRuntimeOptions: toml.TreeFromMap, then Tree.Marshal).
func criConfigBody(path string) []byte {
	tree, err := toml.LoadFile(path)
	if err != nil {
		die("options-toml: %v", err)
	}
	again, err := toml.TreeFromMap(tree.ToMap())
	if err != nil {
		die("options-toml: %v", err)
	}
	body, err := again.Marshal()
	if err != nil {
		die("options-toml: %v", err)
	}
	return body
}

func varint(v uint64) []byte {
	var out []byte
	for v >= 0x80 {
		out = append(out, byte(v)|0x80)
		v >>= 7
	}
	return append(out, byte(v))
}

// run creates a container whose runtime options are the given containerd.runc.v1.Options (or,
// with optsTOML, CRI's runtimeoptions.v1.Options carrying a config_body) and starts `sleep 1000`
// in it with FIFO stdio; it prints the task pid and leaves it running.
func run(ctx context.Context, client *containerd.Client, id, runtime, rootfs, optsJSON, optsTOML, fifoDir string) {
	var opts options.Options
	if err := json.Unmarshal([]byte(optsJSON), &opts); err != nil {
		die("options: %v", err)
	}
	var runtimeOpts interface{} = &opts
	if optsTOML != "" {
		// containerd 1.6's Go type has no config_body (field 3, bytes): encode it by hand.
		body := criConfigBody(optsTOML)
		value := append([]byte{0x1a}, varint(uint64(len(body)))...)
		runtimeOpts = &gogotypes.Any{TypeUrl: "runtimeoptions.v1.Options", Value: append(value, body...)}
	}
	c, err := client.NewContainer(ctx, id,
		containerd.WithRuntime(runtime, runtimeOpts),
		containerd.WithNewSpec(oci.WithRootFSPath(rootfs), oci.WithProcessArgs("/bin/sleep", "1000")))
	if err != nil {
		die("new container %s: %v", id, err)
	}
	creator := cio.NewCreator(cio.WithStreams(nil, io.Discard, io.Discard), cio.WithFIFODir(fifoDir))
	t, err := c.NewTask(ctx, creator)
	if err != nil {
		die("new task %s: %v", id, err)
	}
	if err := t.Start(ctx); err != nil {
		die("start %s: %v", id, err)
	}
	fmt.Println(t.Pid())
}

// fakeCheckpoint is a checkpoint archive containerd accepts (a tar it unpacks into the
// directory it hands the shim as CreateTaskRequest.checkpoint); CRIU would reject it.
func fakeCheckpoint() []byte {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	body := []byte("not a criu image\n")
	_ = w.WriteHeader(&tar.Header{Name: "inventory.img", Mode: 0600, Size: int64(len(body))})
	_, _ = w.Write(body)
	_ = w.Close()
	return buf.Bytes()
}

// restore creates a task from a checkpoint descriptor and starts it: the shim's Create must
// answer with no pid, and its Start must run the runtime's restore (which fails on a fake
// image). Prints "create pid=N" and "start: <error>" and removes the task and container.
func restore(ctx context.Context, client *containerd.Client, id, runtime, rootfs string) {
	// Without a lease containerd's garbage collector may remove the unreferenced blob before
	// Create reads it.
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		die("lease: %v", err)
	}
	defer done(ctx)
	blob := fakeCheckpoint()
	desc := ocispec.Descriptor{
		MediaType: images.MediaTypeContainerd1Checkpoint,
		Digest:    digest.FromBytes(blob),
		Size:      int64(len(blob)),
	}
	if err := content.WriteBlob(ctx, client.ContentStore(), "cshim-it-"+id, bytes.NewReader(blob), desc); err != nil {
		die("write checkpoint blob: %v", err)
	}
	c, err := client.NewContainer(ctx, id, containerd.WithRuntime(runtime, nil),
		containerd.WithNewSpec(oci.WithRootFSPath(rootfs), oci.WithProcessArgs("/bin/sleep", "1000")))
	if err != nil {
		die("new container %s: %v", id, err)
	}
	defer c.Delete(ctx)
	svc := client.TaskService()
	resp, err := svc.Create(ctx, &tasks.CreateTaskRequest{
		ContainerID: id,
		Checkpoint: &types.Descriptor{
			MediaType: desc.MediaType,
			Digest:    desc.Digest,
			Size_:     desc.Size,
		},
	})
	if err != nil {
		die("create from checkpoint: %v", err)
	}
	fmt.Printf("create pid=%d\n", resp.Pid)
	_, err = svc.Start(ctx, &tasks.StartRequest{ContainerID: id})
	if err == nil {
		fmt.Println("start: ok")
	} else {
		fmt.Printf("start: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	if _, err := svc.Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id}); err != nil {
		fmt.Printf("delete: %v\n", err)
	}
}

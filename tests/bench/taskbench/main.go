// SPDX-License-Identifier: Apache-2.0
// taskbench drives a shim's task API with containerd 1.6's own Go task client (the generated
// ttrpc TaskService from Debian's containerd package), the way containerd does: one ttrpc
// connection, N calls in flight on it. It measures one method for a fixed time and prints one
// line of key=value figures:
//
//	method= inflight= calls= failed= calls_per_s= p50_us= p99_us= max_us= cpu_us_per_call= child_cpu_us_per_call=
//
// CPU per call is the shim's own utime+stime delta (/proc/<pid>/stat, fields 14 and 15) over the
// measured calls; child CPU is cutime+cstime (processes the shim started and reaped meanwhile).
//
//	taskbench -address SOCKET -namespace NS -id ID -pid SHIMPID -method State -inflight 16 -duration 3s
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/namespaces"
	taskapi "github.com/containerd/containerd/runtime/v2/task"
	"github.com/containerd/ttrpc"
)

var (
	address   = flag.String("address", "", "shim ttrpc socket path (unix:// prefix allowed)")
	namespace = flag.String("namespace", "default", "containerd namespace")
	id        = flag.String("id", "", "container id")
	pid       = flag.Int("pid", 0, "shim pid, for CPU per call (0: not measured)")
	method    = flag.String("method", "State", "State, Pids, Stats or Connect")
	inflight  = flag.Int("inflight", 1, "calls in flight on the one connection")
	duration  = flag.Duration("duration", 3*time.Second, "how long to measure")
	warmup    = flag.Int("warmup", 200, "calls made before measuring")
	maxCalls  = flag.Int("max-calls", 2000000, "stop measuring after this many calls")
)

// clock ticks per second of /proc/<pid>/stat times; 100 on every Linux port that matters here
// (USER_HZ), and Go has no sysconf without cgo.
const userHZ = 100

// cpuTicks returns utime+stime and cutime+cstime of pid.
func cpuTicks(p int) (own, children int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	// Fields after the command name (which may hold spaces) start after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("unexpected /proc/%d/stat", p)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime is field 14 -> f[11], stime f[12], cutime f[13], cstime f[14].
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", p)
	}
	var v [4]int64
	for k := 0; k < 4; k++ {
		if v[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return 0, 0, err
		}
	}
	return v[0] + v[1], v[2] + v[3], nil
}

func call(svc taskapi.TaskService, ctx context.Context) error {
	var err error
	switch *method {
	case "State":
		_, err = svc.State(ctx, &taskapi.StateRequest{ID: *id})
	case "Pids":
		_, err = svc.Pids(ctx, &taskapi.PidsRequest{ID: *id})
	case "Stats":
		_, err = svc.Stats(ctx, &taskapi.StatsRequest{ID: *id})
	case "Connect":
		_, err = svc.Connect(ctx, &taskapi.ConnectRequest{ID: *id})
	default:
		err = fmt.Errorf("unknown method %q", *method)
	}
	return err
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)) * p)
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i].Nanoseconds()) / 1e3
}

func main() {
	flag.Parse()
	addr := strings.TrimPrefix(*address, "unix://")
	if addr == "" || *id == "" || *inflight < 1 {
		fmt.Fprintln(os.Stderr, "usage: taskbench -address SOCKET -id ID [-namespace NS] [-pid PID] [-method M] [-inflight N] [-duration D]")
		os.Exit(2)
	}
	conn, err := net.Dial("unix", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dial %s: %v\n", addr, err)
		os.Exit(1)
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	svc := taskapi.NewTaskClient(client)
	ctx := namespaces.WithNamespace(context.Background(), *namespace)

	for i := 0; i < *warmup; i++ {
		if err := call(svc, ctx); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", *method, err)
			os.Exit(1)
		}
	}

	var own0, ch0, own1, ch1 int64
	if *pid > 0 {
		if own0, ch0, err = cpuTicks(*pid); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	var (
		issued   int64
		failures int64
		firstErr atomic.Value
		wg       sync.WaitGroup
		lats     = make([][]time.Duration, *inflight)
	)
	deadline := time.Now().Add(*duration)
	t0 := time.Now()
	for w := 0; w < *inflight; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			l := make([]time.Duration, 0, 1<<16)
			for atomic.AddInt64(&issued, 1) <= int64(*maxCalls) {
				s := time.Now()
				if err := call(svc, ctx); err != nil {
					atomic.AddInt64(&failures, 1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				e := time.Now()
				l = append(l, e.Sub(s))
				if e.After(deadline) {
					break
				}
			}
			lats[w] = l
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(t0)
	if *pid > 0 {
		if own1, ch1, err = cpuTicks(*pid); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	if failures > 0 {
		// Measured and reported, not fatal: the table shows how many failed and the first error.
		fmt.Fprintf(os.Stderr, "%d of %d %s calls failed, first: %v\n", failures, len(all), *method, firstErr.Load())
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	n := float64(len(all))
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "method=%s inflight=%d calls=%d failed=%d calls_per_s=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f",
		*method, *inflight, len(all), failures, n/elapsed.Seconds(), pct(all, 0.50), pct(all, 0.99), pct(all, 1))
	if *pid > 0 {
		fmt.Fprintf(w, " cpu_us_per_call=%.2f child_cpu_us_per_call=%.2f",
			float64(own1-own0)*1e6/userHZ/n, float64(ch1-ch0)*1e6/userHZ/n)
	}
	fmt.Fprintln(w)
	w.Flush()
}

// Command loadgen drives an HTTP append endpoint with concurrent clients, one entry (or one pre-built
// request body) per POST, bounded in time, and prints what was acknowledged as one JSON object.
//
// The same client drives the bidtrace notary and Tessera's POSIX conformance log, so the client's own
// cost favours neither. Bodies come either from a file prepared beforehand (the notary's pre-signed
// submissions: a 4-byte big-endian length before each body) or are made here (Tessera: random bytes of
// a given size, each distinct).
//
// A 503 with Retry-After (a server shedding load) is not a failure: the client waits as told and sends
// the same body again; the entry's latency runs from its first attempt, waits included.
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type summary struct {
	Clients  int     `json:"clients"`
	Requests int64   `json:"requests"`
	Records  int64   `json:"records"`
	Seconds  float64 `json:"seconds"`
	RatePerS float64 `json:"rate"`
	P50Ms    float64 `json:"p50_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
	Errors   int64   `json:"errors"`
	Busy     int64   `json:"busy"`
	// The answered attempt alone (the server's own latency for what it admitted), when some were sent again.
	AttemptP50Ms float64  `json:"attempt_p50_ms"`
	AttemptP99Ms float64  `json:"attempt_p99_ms"`
	FirstErrs    []string `json:"first_errors"`
	Exhausted    bool     `json:"exhausted"`
}

// notaryAnswer is the part of a POST /v1/records answer that says how many records were appended.
type notaryAnswer struct {
	Receipts []json.RawMessage `json:"receipts"`
	Appended int               `json:"appended"`
}

func readBodies(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var bodies [][]byte
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return bodies, nil
			}
			return nil, fmt.Errorf("body %d: truncated length: %w", len(bodies), err)
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("body %d: truncated: %w", len(bodies), err)
		}
		bodies = append(bodies, body)
	}
}

func main() {
	url := flag.String("url", "", "URL to POST to")
	clients := flag.Int("clients", 1, "concurrent clients, each with its own kept-alive connection")
	seconds := flag.Float64("seconds", 10, "stop starting requests after this many seconds")
	bodiesPath := flag.String("bodies", "", "file of length-prefixed request bodies, each sent once")
	entrySize := flag.Int("entry-size", 0, "instead of -bodies: random entries of this many bytes")
	records := flag.Int("records-per-body", 1, "records each body carries (checked in a notary's answer)")
	answer := flag.String("answer", "notary", "how to check a 200 answer: notary (JSON receipts) or index (a number)")
	contentType := flag.String("content-type", "application/json", "Content-Type of the requests")
	flag.Parse()
	if *url == "" || (*bodiesPath == "") == (*entrySize == 0) {
		fmt.Fprintln(os.Stderr, "need -url and exactly one of -bodies or -entry-size")
		os.Exit(2)
	}
	var bodies [][]byte
	if *bodiesPath != "" {
		var err error
		if bodies, err = readBodies(*bodiesPath); err != nil {
			fmt.Fprintf(os.Stderr, "reading %s: %v\n", *bodiesPath, err)
			os.Exit(2)
		}
	}

	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		MaxIdleConns:        *clients,
		MaxIdleConnsPerHost: *clients,
		IdleConnTimeout:     120 * time.Second,
		DisableCompression:  true,
	}
	httpClient := &http.Client{Transport: transport, Timeout: 120 * time.Second}

	var next, requests, acked, failures, busy atomic.Int64
	var exhausted atomic.Bool
	var mu sync.Mutex
	var firstErrs []string
	latencies := make([][]time.Duration, *clients)
	attempts := make([][]time.Duration, *clients)
	fail := func(msg string) {
		failures.Add(1)
		mu.Lock()
		if len(firstErrs) < 5 {
			firstErrs = append(firstErrs, msg)
		}
		mu.Unlock()
	}

	start := time.Now()
	deadline := start.Add(time.Duration(*seconds * float64(time.Second)))
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				var body []byte
				if bodies != nil {
					i := next.Add(1) - 1
					if i >= int64(len(bodies)) {
						exhausted.Store(true)
						return
					}
					body = bodies[i]
				} else {
					body = make([]byte, *entrySize)
					if _, err := rand.Read(body); err != nil {
						fail(err.Error())
						return
					}
				}
				t := time.Now()
				var resp *http.Response
				var out []byte
				var err error
				var sent time.Time
				for {
					sent = time.Now()
					resp, err = httpClient.Post(*url, *contentType, bytes.NewReader(body))
					if err != nil {
						break
					}
					out, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					requests.Add(1)
					wait, werr := strconv.Atoi(resp.Header.Get("Retry-After"))
					if err != nil || resp.StatusCode != http.StatusServiceUnavailable || werr != nil {
						break
					}
					busy.Add(1)
					time.Sleep(time.Duration(wait) * time.Second)
				}
				if resp == nil { // the request itself failed (connection refused or reset)
					fail(err.Error())
					return
				}
				latency, attempt := time.Since(t), time.Since(sent)
				if err != nil || resp.StatusCode != http.StatusOK {
					fail(fmt.Sprintf("%d %.200s", resp.StatusCode, out))
					return
				}
				if *answer == "notary" {
					var a notaryAnswer
					if err := json.Unmarshal(out, &a); err != nil || a.Appended != *records || len(a.Receipts) != *records {
						fail(fmt.Sprintf("expected %d records appended, got %.200s", *records, out))
						return
					}
				} else if _, err := strconv.ParseUint(string(bytes.TrimSpace(out)), 10, 64); err != nil {
					fail(fmt.Sprintf("expected a leaf index, got %.200s", out))
					return
				}
				acked.Add(int64(*records))
				latencies[c] = append(latencies[c], latency)
				attempts[c] = append(attempts[c], attempt)
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()

	sorted := func(per [][]time.Duration) []time.Duration {
		var all []time.Duration
		for _, l := range per {
			all = append(all, l...)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		return all
	}
	pct := func(all []time.Duration, q float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(q*float64(len(all)-1)+0.5)].Microseconds()) / 1000
	}
	all, answered := sorted(latencies), sorted(attempts)
	s := summary{
		Clients: *clients, Requests: requests.Load(), Records: acked.Load(), Seconds: elapsed,
		RatePerS: float64(acked.Load()) / elapsed, P50Ms: pct(all, 0.5), P90Ms: pct(all, 0.9), P99Ms: pct(all, 0.99),
		AttemptP50Ms: pct(answered, 0.5), AttemptP99Ms: pct(answered, 0.99),
		Errors: failures.Load(), Busy: busy.Load(), FirstErrs: firstErrs, Exhausted: exhausted.Load(),
	}
	if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
		os.Exit(1)
	}
}

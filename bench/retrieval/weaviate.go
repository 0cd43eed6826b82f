package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/store/sqlite"
)

// peerClass is the collection the peer baseline imports the chunks into.
const peerClass = "BenchRetrievalPeer"

// peer is the baseline: Weaviate's own BM25, used directly over its REST
// and GraphQL API with nothing of ConvoSphere but the chunks. It speaks
// plain HTTP (what weaviate-go-client's GraphQL builder sends), so the
// measurement holds no client library logic either.
type peer struct {
	base   string
	http   *http.Client
	dir    string            // working directory
	chunks []knowledge.Chunk // from Prepare
}

func newPeer(ctx context.Context, rawURL, dir string) (*peer, error) {
	if rawURL == "" {
		return nil, errors.New("no Weaviate URL: set CONVOSPHERE_TEST_WEAVIATE_URL or let the bench start scripts/weaviate.sh")
	}
	p := &peer{base: strings.TrimRight(rawURL, "/"), dir: dir, http: &http.Client{Timeout: 2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}
	// A class left by an interrupted run is replaced.
	if err := p.do(ctx, http.MethodDelete, "/v1/schema/"+peerClass, nil, nil); err != nil && !isStatus(err, http.StatusNotFound) {
		return nil, err
	}
	class := map[string]any{
		"class":      peerClass,
		"vectorizer": "none",
		"properties": []map[string]any{
			{"name": "title", "dataType": []string{"text"}},
			{"name": "headings", "dataType": []string{"text"}},
			{"name": "text", "dataType": []string{"text"}},
			{"name": "document", "dataType": []string{"text"}, "tokenization": "field", "indexSearchable": false},
			{"name": "position", "dataType": []string{"int"}},
		},
	}
	if err := p.do(ctx, http.MethodPost, "/v1/schema", class, nil); err != nil {
		return nil, fmt.Errorf("create peer class: %w", err)
	}
	return p, nil
}

// Prepare cuts the pages into exactly the chunks the service makes: it
// runs them through a knowledge.Service (extraction, production chunking)
// whose index only records what it is given. Not timed: the peer's ingest
// is Weaviate's import of those chunks.
func (p *peer) Prepare(ctx context.Context, pages []Page) error {
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(p.dir, "chunks.db")})
	if err != nil {
		return err
	}
	defer store.Close()
	rec := &recordingIndex{}
	svc, err := newService(store, rec, nil)
	if err != nil {
		return err
	}
	if err := store.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: kbName}); err != nil {
		return err
	}
	for _, pg := range pages {
		if _, err := svc.Ingest(ctx, kbName, pg.Doc, []byte(pg.Text)); err != nil {
			return fmt.Errorf("chunk %s: %w", pg.Doc, err)
		}
	}
	p.chunks = rec.chunks
	return nil
}

// Ingest imports the prepared chunks in batches of 100.
func (p *peer) Ingest(ctx context.Context, pages []Page) (int, error) {
	if p.chunks == nil {
		if err := p.Prepare(ctx, pages); err != nil {
			return 0, err
		}
	}
	var batch []map[string]any
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var out []struct {
			Result struct {
				Errors *struct {
					Error []struct{ Message string } `json:"error"`
				} `json:"errors"`
			} `json:"result"`
		}
		if err := p.do(ctx, http.MethodPost, "/v1/batch/objects", map[string]any{"objects": batch}, &out); err != nil {
			return fmt.Errorf("peer batch import: %w", err)
		}
		for _, o := range out {
			if e := o.Result.Errors; e != nil && len(e.Error) > 0 {
				return fmt.Errorf("peer batch import: %s", e.Error[0].Message)
			}
		}
		batch = batch[:0]
		return nil
	}
	for _, c := range p.chunks {
		batch = append(batch, map[string]any{"class": peerClass, "properties": map[string]any{
			"title": c.Title, "headings": strings.Join(c.HeadingPath, "\n"), "text": c.Text,
			"document": c.Document, "position": c.Position,
		}})
		if len(batch) == 100 {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	return len(p.chunks), flush()
}

// recordingIndex is a knowledge.Index that keeps the chunks it is given
// and finds nothing.
type recordingIndex struct {
	mu     sync.Mutex
	chunks []knowledge.Chunk
}

func (r *recordingIndex) Name() string { return "recording" }
func (r *recordingIndex) Upsert(_ context.Context, chunks []knowledge.Chunk) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chunks = append(r.chunks, chunks...)
	return nil
}
func (r *recordingIndex) DeleteDocument(context.Context, string, string) error { return nil }
func (r *recordingIndex) DeleteKnowledgeBase(context.Context, string) error    { return nil }
func (r *recordingIndex) Search(context.Context, knowledge.Query) ([]engine.Passage, error) {
	return []engine.Passage{}, nil
}
func (r *recordingIndex) Documents(context.Context, string) ([]knowledge.IndexedDocument, error) {
	return []knowledge.IndexedDocument{}, nil
}
func (r *recordingIndex) Close() error { return nil }

// Search asks Weaviate's BM25 for the top topK chunks.
func (p *peer) Search(ctx context.Context, query string) ([]string, error) {
	q, _ := json.Marshal(query) // a JSON string is a valid GraphQL string
	gql := fmt.Sprintf(`{ Get { %s(bm25: {query: %s}, limit: %d) { document } } }`, peerClass, q, topK)
	var out struct {
		Data struct {
			Get map[string][]struct {
				Document string `json:"document"`
			} `json:"Get"`
		} `json:"data"`
		Errors []struct{ Message string } `json:"errors"`
	}
	if err := p.do(ctx, http.MethodPost, "/v1/graphql", map[string]string{"query": gql}, &out); err != nil {
		return nil, err
	}
	if len(out.Errors) > 0 {
		return nil, fmt.Errorf("peer query: %s", out.Errors[0].Message)
	}
	var docs []string
	for _, o := range out.Data.Get[peerClass] {
		if !slices.Contains(docs, o.Document) {
			docs = append(docs, o.Document)
		}
	}
	return docs, nil
}

func (p *peer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return p.do(ctx, http.MethodDelete, "/v1/schema/"+peerClass, nil, nil)
}

type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("weaviate: HTTP %d: %s", e.code, e.body) }

func isStatus(err error, code int) bool {
	var se *statusError
	return errors.As(err, &se) && se.code == code
}

// do sends a JSON request and decodes a JSON answer into out (when not nil).
func (p *peer) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return &statusError{resp.StatusCode, strings.TrimSpace(string(b))}
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, out)
}

// weaviateVersion asks the server for its version.
func weaviateVersion(ctx context.Context, rawURL string) (string, error) {
	p := &peer{base: strings.TrimRight(rawURL, "/"), http: &http.Client{Timeout: 10 * time.Second}}
	var meta struct {
		Version string `json:"version"`
	}
	if err := p.do(ctx, http.MethodGet, "/v1/meta", nil, &meta); err != nil {
		return "", err
	}
	return meta.Version, nil
}

// weaviateServer is a Weaviate server the parent watches the memory of.
type weaviateServer struct {
	URL      string
	Version  string
	PID      int  // 0 when unknown (not on this machine, or not readable)
	started  bool // started by the bench, so stopped by it
	script   string
	stateDir string
}

// startWeaviate uses the server at rawURL, or, when rawURL is empty,
// starts one of the bench's own with scripts/weaviate.sh, its state under
// cacheDir/services.
func startWeaviate(ctx context.Context, rawURL, cacheDir string) (*weaviateServer, error) {
	s := &weaviateServer{URL: rawURL}
	if rawURL == "" {
		root, err := benchkit.RepoRoot()
		if err != nil {
			return nil, err
		}
		s.script = filepath.Join(root, "scripts", "weaviate.sh")
		// A server of the bench's own (not the one tests may be using),
		// so that nothing else loads it and its memory is the bench's.
		if s.stateDir, err = filepath.Abs(filepath.Join(cacheDir, "services")); err != nil {
			return nil, err
		}
		benchkit.Logf("weaviate: %s start (state in %s)", s.script, s.stateDir)
		cmd := exec.CommandContext(ctx, s.script, "start")
		cmd.Env = append(os.Environ(), "CONVOSPHERE_SERVICES_DIR="+s.stateDir)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%s start: %w", s.script, err)
		}
		s.URL = benchkit.Exports(string(out))["CONVOSPHERE_TEST_WEAVIATE_URL"]
		if s.URL == "" {
			return nil, fmt.Errorf("%s start printed no CONVOSPHERE_TEST_WEAVIATE_URL", s.script)
		}
		s.started = true // the bench's own, even when left by an interrupted run
	}
	v, err := weaviateVersion(ctx, s.URL)
	if err != nil {
		return nil, fmt.Errorf("weaviate at %s: %w", s.URL, err)
	}
	s.Version = v
	s.PID = listeningPID(s.URL)
	if s.PID == 0 {
		benchkit.Logf("weaviate: cannot find the server process of %s: its peak RSS is not reported", s.URL)
	}
	return s, nil
}

// stop stops the server when the bench started it.
func (s *weaviateServer) stop() {
	if !s.started {
		return
	}
	benchkit.Logf("weaviate: %s stop", s.script)
	cmd := exec.Command(s.script, "stop")
	cmd.Env = append(os.Environ(), "CONVOSPHERE_SERVICES_DIR="+s.stateDir)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		benchkit.Logf("weaviate: stop: %v", err)
	}
}

// resetPeak sets the server's peak RSS (VmHWM) back to its current RSS, so
// that the next system's peak is its own. It reports whether it could.
func (s *weaviateServer) resetPeak() bool {
	if s.PID == 0 {
		return false
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.PID), []byte("5"), 0) == nil
}

// peak is the server's peak RSS in bytes (VmHWM), 0 when unknown.
func (s *weaviateServer) peak() int64 {
	if s.PID == 0 {
		return 0
	}
	return benchkit.ProcStatusBytes(s.PID, "VmHWM")
}

// listeningPID finds the process listening on the URL's port on this
// machine, from the socket inodes in /proc/net/tcp{,6} and the open files
// of every process. It returns 0 when it cannot tell.
func listeningPID(rawURL string) int {
	u, err := url.Parse(rawURL)
	if err != nil || u.Port() == "" {
		return 0
	}
	port, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil {
		return 0
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		file, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && p == port {
				inodes["socket:["+fields[9]+"]"] = true
			}
		}
		file.Close()
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[link] {
				return pid
			}
		}
	}
	return 0
}

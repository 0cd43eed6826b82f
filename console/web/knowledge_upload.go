package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// Statuses of an uploaded file.
const (
	uploadIndexed   = "indexed"   // stored and indexed
	uploadUnchanged = "unchanged" // the same content was already indexed: nothing written
	uploadFailed    = "failed"    // see its error; the other files are not affected
)

// uploadResponse is the answer of POST /api/v1/knowledge-bases/{kb}/documents.
type uploadResponse struct {
	KnowledgeBase string         `json:"knowledge_base"`
	Created       bool           `json:"created"` // the knowledge base was created by this upload
	Documents     []uploadResult `json:"documents"`
}

// uploadResult is what became of one file, in the order of the parts.
type uploadResult struct {
	Name       string       `json:"name"`
	Status     string       `json:"status"`
	DocumentID string       `json:"document_id,omitempty"` // absent when nothing was stored
	Chunks     int          `json:"chunks"`
	Error      *errorDetail `json:"error,omitempty"`
}

// uploadedFile is one file part of an upload, read into memory.
type uploadedFile struct {
	name    string // as the client sent it
	content []byte
	err     error // why the part cannot be ingested (a refused name), or nil
}

// uploadDocuments answers POST /api/v1/knowledge-bases/{kb}/documents, a
// multipart/form-data body with one or more file parts under any field
// name. The knowledge base is created when missing. Each file is ingested
// on its own: a bad one fails with its reason and the others go on, so the
// answer is 200 with a result per file whenever the request itself was
// acceptable. Re-uploading the same content reports "unchanged" and writes
// nothing. The whole body is read before anything is stored, so a refused
// request (413, 415, 400) changes nothing.
//
// A client that sends Accept: text/event-stream gets the results as they
// happen instead: a "start" event, one "file" event per file as it is
// indexed, then a "done" event with the whole answer and a summary (see
// uploadStream).
func (s *Server) uploadDocuments(c *gin.Context) {
	ctx := c.Request.Context()
	name, svc, ok := s.kbRequest(c)
	if !ok {
		return
	}
	// Large uploads take a while to read and index: lift a server-wide
	// write timeout for this response.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	files, _, err := s.readUpload(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	created, err := s.ensureKnowledgeBase(ctx, name)
	if err != nil {
		s.fail(c, err)
		return
	}
	if acceptsEventStream(c.GetHeader("Accept")) {
		s.uploadStream(c, svc, name, created, files)
		return
	}
	resp, err := s.ingestFiles(c, svc, name, created, files, nil)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, resp)
}

// ingestFiles ingests the files of an upload one after the other, calling
// each (when not nil) with every file's result as soon as it is known, and
// logs the outcome. It fails only when the request is cancelled; the
// results so far come back all the same.
func (s *Server) ingestFiles(c *gin.Context, svc Knowledge, kb string, created bool, files []uploadedFile,
	each func(i int, r uploadResult)) (uploadResponse, error) {
	ctx := c.Request.Context()
	start := s.now()
	resp := uploadResponse{KnowledgeBase: kb, Created: created, Documents: make([]uploadResult, 0, len(files))}
	counts := uploadCounts{}
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return resp, engine.WrapError(engine.EUNAVAILABLE, err, "The upload was interrupted after %d of %d files; send the rest again.", len(resp.Documents), len(files))
		}
		r := s.ingestUpload(ctx, svc, kb, f)
		counts.add(r.Status)
		resp.Documents = append(resp.Documents, r)
		if each != nil {
			each(i, r)
		}
	}
	s.log.InfoContext(ctx, "documents uploaded", "knowledge_base", kb, "user_id", principalOf(c).User.ID,
		"files", len(files), "indexed", counts.Indexed, "unchanged", counts.Unchanged,
		"failed", counts.Failed, "duration_ms", s.now().Sub(start).Milliseconds())
	return resp, nil
}

// uploadCounts count an upload's files by status.
type uploadCounts struct {
	Indexed   int `json:"indexed"`
	Unchanged int `json:"unchanged"`
	Failed    int `json:"failed"`
}

func (n *uploadCounts) add(status string) {
	switch status {
	case uploadIndexed:
		n.Indexed++
	case uploadUnchanged:
		n.Unchanged++
	case uploadFailed:
		n.Failed++
	}
}

// uploadStartEvent is the data of an upload stream's "start" event: the
// files about to be indexed, in order.
type uploadStartEvent struct {
	KnowledgeBase string   `json:"knowledge_base"`
	Created       bool     `json:"created"`
	Files         []string `json:"files"`
	Total         int      `json:"total"`
}

// uploadFileEvent is the data of a "file" event: one file's result, as in
// the JSON answer, with its place in the upload (index from 0) and how
// many files have been done.
type uploadFileEvent struct {
	Index int `json:"index"`
	Done  int `json:"done"`
	Total int `json:"total"`
	uploadResult
}

// uploadDoneEvent is the data of the "done" event: the same object as the
// JSON answer, plus the count of files by status.
type uploadDoneEvent struct {
	uploadResponse
	Summary uploadCounts `json:"summary"`
}

// uploadStream answers an upload as server-sent events, once the body has
// been read and the request accepted: "start", then one "file" event per
// file as soon as it is indexed (or failed), then "done"; "error" instead
// of "done" when the upload was interrupted. Comment lines keep the stream
// open while a large file is indexed.
func (s *Server) uploadStream(c *gin.Context, svc Knowledge, kb string, created bool, files []uploadedFile) {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	c.Writer.Flush()

	sse := &sseReplier{w: c.Writer, last: time.Now()}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.name
	}
	_ = sse.send("start", uploadStartEvent{KnowledgeBase: kb, Created: created, Files: names, Total: len(files)})
	stop := sse.keepAlive(s.cfg.SSEKeepAlive)
	resp, err := s.ingestFiles(c, svc, kb, created, files, func(i int, r uploadResult) {
		_ = sse.send("file", uploadFileEvent{Index: i, Done: i + 1, Total: len(files), uploadResult: r})
	})
	stop()
	if err != nil {
		_, detail := s.describe(c, err, "")
		_ = sse.send("error", errorBody{Error: detail})
	} else {
		done := uploadDoneEvent{uploadResponse: resp}
		for _, d := range resp.Documents {
			done.Summary.add(d.Status)
		}
		_ = sse.send("done", done)
	}
	if werr := sse.writeErr(); werr != nil {
		s.log.InfoContext(c.Request.Context(), "event stream closed early", "error", werr)
	}
}

// maxUploadFieldBytes bounds a form field of an upload that is kept (the
// console's form sends its CSRF token this way); longer fields are skipped.
const maxUploadFieldBytes = 1 << 10

// readUpload reads every part of a multipart/form-data body, keeping the
// file parts (those with a filename parameter) and the short form fields.
// A part with an empty file name and no content is what a browser sends
// for a file input left empty: it is skipped.
func (s *Server) readUpload(c *gin.Context) ([]uploadedFile, url.Values, error) {
	limit := s.cfg.MaxUploadBytes
	tooLarge := engine.Errorf(engine.ETOOLARGE, "The upload is over the limit of %d bytes: send fewer or smaller files per request.", limit)
	if c.Request.ContentLength > limit {
		return nil, nil, tooLarge
	}
	mt, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, nil, &engine.Error{Code: errUnsupportedMediaType,
			Message: "Send the files as multipart/form-data with one part per file, for example: curl -F file=@guide.md URL."}
	}
	if params["boundary"] == "" {
		return nil, nil, engine.Errorf(engine.EINVALID, "The multipart/form-data Content-Type has no boundary parameter: let your HTTP client build the multipart body.")
	}
	body := &readRecorder{r: http.MaxBytesReader(c.Writer, c.Request.Body, limit)}
	readErr := func(err error) error {
		var over *http.MaxBytesError
		if errors.As(err, &over) || errors.As(body.err, &over) {
			return tooLarge
		}
		return engine.WrapError(engine.EINVALID, err, "The multipart body could not be read: it is malformed or was cut off; send it again.")
	}
	mr := multipart.NewReader(body, params["boundary"])
	var files []uploadedFile
	fields, kept := url.Values{}, 0
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, readErr(err)
		}
		name, isFile, nameErr := partFileName(part)
		if !isFile {
			value, err := io.ReadAll(io.LimitReader(part, maxUploadFieldBytes+1))
			if err != nil {
				return nil, nil, readErr(err)
			}
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, nil, readErr(err)
			}
			if field := part.FormName(); field != "" && len(value) <= maxUploadFieldBytes && kept < 32 {
				fields.Add(field, string(value))
				kept++
			}
			continue
		}
		content, err := io.ReadAll(part)
		if err != nil {
			return nil, nil, readErr(err)
		}
		if name == "" && len(content) == 0 {
			continue // a file input left empty
		}
		if len(files) == s.cfg.MaxUploadFiles {
			return nil, nil, engine.Errorf(engine.ETOOLARGE, "The upload has more than %d files: send them in several requests.", s.cfg.MaxUploadFiles)
		}
		files = append(files, uploadedFile{name: name, content: content, err: nameErr})
	}
	if len(files) == 0 {
		return nil, nil, engine.Errorf(engine.EINVALID, "The upload has no files: send each file as a multipart part with a file name, for example: curl -F file=@guide.md URL.")
	}
	return files, fields, nil
}

// readRecorder keeps the first error its reader returned other than EOF,
// because the multipart reader does not always wrap it.
type readRecorder struct {
	r   io.Reader
	err error
}

func (r *readRecorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	return n, err
}

// partFileName returns the file name of a part exactly as the client sent
// it (multipart.Part.FileName keeps only the last path element, which would
// hide "../" from the check) and whether the part is a file at all: parts
// without a filename parameter are ordinary form fields. err says why the
// name is refused.
func partFileName(part *multipart.Part) (name string, isFile bool, err error) {
	cd := part.Header.Get("Content-Disposition")
	_, params, perr := mime.ParseMediaType(cd)
	if perr != nil {
		if strings.Contains(strings.ToLower(cd), "filename") {
			return "", true, engine.Errorf(engine.EINVALID, "A file part's Content-Disposition header is malformed, so its name cannot be read: let your HTTP client build the multipart body.")
		}
		return "", false, nil
	}
	name, isFile = params["filename"]
	if !isFile {
		return "", false, nil
	}
	return name, true, checkUploadName(name)
}

// maxUploadNameBytes bounds an uploaded file's name.
const maxUploadNameBytes = 512

var drivePrefix = regexp.MustCompile(`^[A-Za-z]:`)

// checkUploadName accepts plain relative names ("guide.md",
// "setup/slack.md"). A name is only ever the document's label in its
// knowledge base, never a path on disk; names that look like an escape
// ("../../x", "/etc/passwd", "C:\x") are refused all the same, so that
// nothing downstream can mistake them for one.
func checkUploadName(name string) error {
	refuse := func(why string) error {
		return engine.Errorf(engine.EINVALID, "File name %q is refused: %s. Upload the file under a plain relative name such as \"guide.md\" or \"setup/slack.md\".", name, why)
	}
	switch {
	case strings.TrimSpace(name) == "":
		return engine.Errorf(engine.EINVALID, "A file part has an empty file name: give every file a name.")
	case len(name) > maxUploadNameBytes:
		return engine.Errorf(engine.EINVALID, "A file name is %d bytes long: use at most %d.", len(name), maxUploadNameBytes)
	case !utf8.ValidString(name):
		return refuse("it is not valid UTF-8")
	case strings.ContainsRune(name, 0):
		return refuse("it contains a NUL byte")
	case hasControl(name):
		return refuse("it contains control characters")
	case strings.Contains(name, `\`):
		return refuse("it contains a backslash")
	case strings.HasPrefix(name, "/") || drivePrefix.MatchString(name):
		return refuse("it is an absolute path")
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch strings.TrimSpace(seg) {
		case "..":
			return refuse(`it contains ".." (path traversal)`)
		case "", ".":
			return refuse(`it has an empty or "." path segment`)
		}
	}
	return nil
}

// ensureKnowledgeBase creates the knowledge base when it is missing and
// reports whether it did.
func (s *Server) ensureKnowledgeBase(ctx context.Context, name string) (bool, error) {
	_, err := s.deps.Store.KnowledgeBaseByName(ctx, name)
	switch {
	case err == nil:
		return false, nil
	case !engine.IsNotFound(err):
		return false, engine.WrapError(engine.EUNAVAILABLE, err, "The knowledge base could not be loaded; please try again in a minute.")
	}
	if err := checkReservedName(name); err != nil {
		return false, err
	}
	kb := &engine.KnowledgeBase{Name: name}
	err = s.deps.Store.CreateKnowledgeBase(ctx, kb)
	switch {
	case err == nil:
		s.log.InfoContext(ctx, "knowledge base created", "knowledge_base", name)
		return true, nil
	case engine.ErrorCode(err) == engine.ECONFLICT: // created meanwhile by another request
		return false, nil
	}
	return false, engine.WrapError(engine.EUNAVAILABLE, err, "The knowledge base could not be created; please try again in a minute.")
}

// ingestUpload ingests one file and describes the outcome.
func (s *Server) ingestUpload(ctx context.Context, svc Knowledge, kb string, f uploadedFile) uploadResult {
	r := uploadResult{Name: f.name}
	err := f.err
	if err == nil {
		var (
			doc       *engine.Document
			unchanged bool
		)
		doc, unchanged, err = svc.Ingest(ctx, kb, f.name, f.content)
		if doc != nil {
			r.DocumentID, r.Chunks = doc.ID, doc.Chunks
		}
		switch {
		case err != nil:
		case unchanged:
			r.Status = uploadUnchanged
		default:
			r.Status = uploadIndexed
		}
	}
	if err != nil {
		d := s.fileError(ctx, kb, err)
		r.Status, r.Chunks, r.Error = uploadFailed, 0, &d
	}
	return r
}

// fileError is the error shown for one file; internal errors are logged
// here, once, and shown as a generic sentence.
func (s *Server) fileError(ctx context.Context, kb string, err error) errorDetail {
	code := engine.ErrorCode(err)
	switch code {
	case engine.EINTERNAL:
		s.log.ErrorContext(ctx, "ingest uploaded file", "knowledge_base", kb, "error", err)
		return errorDetail{Code: code, Message: internalMessage}
	case engine.EUNAVAILABLE, engine.ETIMEOUT:
		s.log.WarnContext(ctx, "ingest uploaded file", "knowledge_base", kb, "code", code, "error", err)
	}
	return errorDetail{Code: code, Message: engine.ErrorMessage(err)}
}

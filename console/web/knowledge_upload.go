package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
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
func (s *Server) uploadDocuments(c *gin.Context) {
	ctx := c.Request.Context()
	name, svc, ok := s.kbRequest(c)
	if !ok {
		return
	}
	// Large uploads take a while to read and index: lift a server-wide
	// write timeout for this response.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	files, err := s.readUpload(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	created, err := s.ensureKnowledgeBase(ctx, name)
	if err != nil {
		s.fail(c, err)
		return
	}
	start := s.now()
	resp := uploadResponse{KnowledgeBase: name, Created: created, Documents: make([]uploadResult, 0, len(files))}
	counts := map[string]int{}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The upload was interrupted after %d of %d files; send the rest again.", len(resp.Documents), len(files)))
			return
		}
		r := s.ingestUpload(ctx, svc, name, f)
		counts[r.Status]++
		resp.Documents = append(resp.Documents, r)
	}
	s.log.InfoContext(ctx, "documents uploaded", "knowledge_base", name, "user_id", principalOf(c).User.ID,
		"files", len(files), "indexed", counts[uploadIndexed], "unchanged", counts[uploadUnchanged],
		"failed", counts[uploadFailed], "duration_ms", s.now().Sub(start).Milliseconds())
	s.writeJSON(c, http.StatusOK, resp)
}

// readUpload reads every part of a multipart/form-data body, keeping the
// file parts (those with a filename parameter) and skipping other fields.
func (s *Server) readUpload(c *gin.Context) ([]uploadedFile, error) {
	limit := s.cfg.MaxUploadBytes
	tooLarge := engine.Errorf(engine.ETOOLARGE, "The upload is over the limit of %d bytes: send fewer or smaller files per request.", limit)
	if c.Request.ContentLength > limit {
		return nil, tooLarge
	}
	mt, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, &engine.Error{Code: errUnsupportedMediaType,
			Message: "Send the files as multipart/form-data with one part per file, for example: curl -F file=@guide.md URL."}
	}
	if params["boundary"] == "" {
		return nil, engine.Errorf(engine.EINVALID, "The multipart/form-data Content-Type has no boundary parameter: let your HTTP client build the multipart body.")
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
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readErr(err)
		}
		name, isFile, nameErr := partFileName(part)
		if !isFile {
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, readErr(err)
			}
			continue
		}
		if len(files) == s.cfg.MaxUploadFiles {
			return nil, engine.Errorf(engine.ETOOLARGE, "The upload has more than %d files: send them in several requests.", s.cfg.MaxUploadFiles)
		}
		content, err := io.ReadAll(part)
		if err != nil {
			return nil, readErr(err)
		}
		files = append(files, uploadedFile{name: name, content: content, err: nameErr})
	}
	if len(files) == 0 {
		return nil, engine.Errorf(engine.EINVALID, "The upload has no files: send each file as a multipart part with a file name, for example: curl -F file=@guide.md URL.")
	}
	return files, nil
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

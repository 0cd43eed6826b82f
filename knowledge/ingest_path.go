package knowledge

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/convosphere/convosphere/engine"
)

// ingestExtensions are the file name extensions IngestPath picks up when it
// walks a directory.
var ingestExtensions = []string{".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx"}

// Outcomes of ingesting one file.
const (
	OutcomeOK      = "ok"      // indexed
	OutcomeSkipped = "skipped" // unchanged, or not a file to ingest
	OutcomeFailed  = "failed"
)

// IngestResult is what happened to one file or document.
type IngestResult struct {
	Source     string // the document's source name in its knowledge base
	Path       string // the file read, for IngestPath
	DocumentID string
	Chunks     int
	Reason     string // why it was skipped or failed, for people
	Err        error  // the failure, for Failed results
}

// IngestReport lists what an ingestion or reindex did, file by file.
type IngestReport struct {
	KnowledgeBase string
	OK            []IngestResult
	Skipped       []IngestResult
	Failed        []IngestResult
}

// IngestProgress is reported after each file IngestPath handles.
type IngestProgress struct {
	Done    int // files handled so far, this one included
	Total   int
	Outcome string // OutcomeOK, OutcomeSkipped or OutcomeFailed
	Result  IngestResult
}

// IngestPath ingests a file, or every Markdown and text file (.md,
// .markdown, .txt, .html, .htm, .pdf, .docx) under a directory, recursively, skipping hidden files
// and directories. Documents are named by their path relative to the
// directory with slashes ("setup/slack.md"), or by the file name when root
// is a file. Each file succeeds or fails alone; the report says which and
// why. The error is for the whole operation: a missing knowledge base or
// root, or ctx ending (the report then holds what was done). progress may
// be nil.
func (s *Service) IngestPath(ctx context.Context, kb, root string, progress func(IngestProgress)) (IngestReport, error) {
	report := IngestReport{KnowledgeBase: kb}
	if _, err := s.knowledgeBase(ctx, kb); err != nil {
		return report, err
	}
	entries, err := s.collect(root)
	if err != nil {
		return report, err
	}
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		if e.outcome == "" {
			e = s.ingestFile(ctx, kb, e)
		}
		switch e.outcome {
		case OutcomeOK:
			report.OK = append(report.OK, e.result)
		case OutcomeSkipped:
			report.Skipped = append(report.Skipped, e.result)
		default:
			report.Failed = append(report.Failed, e.result)
		}
		if progress != nil {
			progress(IngestProgress{Done: i + 1, Total: len(entries), Outcome: e.outcome, Result: e.result})
		}
	}
	s.log.InfoContext(ctx, "path ingested", "knowledge_base", kb, "ok", len(report.OK),
		"skipped", len(report.Skipped), "failed", len(report.Failed))
	return report, nil
}

// pathEntry is a file found under the root; outcome is set when the walk
// already decided it.
type pathEntry struct {
	outcome string
	result  IngestResult
}

// collect lists the files under root in lexical order.
func (s *Service) collect(root string) ([]pathEntry, error) {
	info, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, engine.WrapError(engine.ENOTFOUND, err, "%s does not exist: give the path of a file or directory.", root)
	case err != nil:
		return nil, engine.WrapError(engine.EINVALID, err, "%s cannot be read: check its permissions.", root)
	case !info.IsDir():
		return []pathEntry{{result: IngestResult{Source: filepath.Base(root), Path: root}}}, nil
	}
	var entries []pathEntry
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		rel, rerr := filepath.Rel(root, path)
		if rerr != nil {
			return rerr
		}
		res := IngestResult{Source: filepath.ToSlash(rel), Path: path}
		if err != nil {
			res.Err = engine.WrapError(engine.EINVALID, err, "%s cannot be read: check its permissions.", path)
			res.Reason = engine.ErrorMessage(res.Err)
			entries = append(entries, pathEntry{outcome: OutcomeFailed, result: res})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if path != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !hasIngestExtension(d.Name()) {
			res.Reason = "not a document type that is ingested (" + strings.Join(ingestExtensions, ", ") + ")"
			entries = append(entries, pathEntry{outcome: OutcomeSkipped, result: res})
			return nil
		}
		if !d.Type().IsRegular() {
			if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
				res.Reason = "not a regular file"
				entries = append(entries, pathEntry{outcome: OutcomeSkipped, result: res})
				return nil
			}
		}
		entries = append(entries, pathEntry{result: res})
		return nil
	})
	if err != nil {
		return nil, engine.WrapError(engine.EINVALID, err, "%s cannot be walked: check its permissions.", root)
	}
	return entries, nil
}

func hasIngestExtension(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range ingestExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// ingestFile reads and ingests one file.
func (s *Service) ingestFile(ctx context.Context, kb string, e pathEntry) pathEntry {
	failed := func(err error) pathEntry {
		e.outcome, e.result.Err, e.result.Reason = OutcomeFailed, err, engine.ErrorMessage(err)
		return e
	}
	info, err := os.Stat(e.result.Path)
	if err != nil {
		return failed(engine.WrapError(engine.EINVALID, err, "%s cannot be read: check its permissions.", e.result.Path))
	}
	if err := s.checkSize(e.result.Source, info.Size()); err != nil {
		return failed(err)
	}
	content, err := os.ReadFile(e.result.Path)
	if err != nil {
		return failed(engine.WrapError(engine.EINVALID, err, "%s cannot be read: check its permissions.", e.result.Path))
	}
	doc, unchanged, err := s.ingest(ctx, kb, e.result.Source, content)
	if doc != nil {
		e.result.DocumentID, e.result.Chunks = doc.ID, doc.Chunks
	}
	switch {
	case err != nil:
		return failed(err)
	case unchanged:
		e.outcome, e.result.Reason = OutcomeSkipped, "unchanged since it was last indexed"
	default:
		e.outcome = OutcomeOK
	}
	return e
}

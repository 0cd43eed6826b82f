package knowledge_test

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// memStore is an in-memory engine.KnowledgeStore for tests, following the
// store contract: ENOTFOUND for missing records, SaveDocument keeps the id
// of the document with the same (KnowledgeBase, Source).
type memStore struct {
	mu   sync.Mutex
	kbs  map[string]*engine.KnowledgeBase
	docs map[string]*engine.Document

	failSetStatus error // returned by SetDocumentStatus when set
}

var _ engine.KnowledgeStore = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{kbs: map[string]*engine.KnowledgeBase{}, docs: map[string]*engine.Document{}}
}

func (s *memStore) CreateKnowledgeBase(ctx context.Context, kb *engine.KnowledgeBase) error {
	if err := kb.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.kbs[kb.Name]; ok {
		return engine.Errorf(engine.ECONFLICT, "knowledge base %q exists", kb.Name)
	}
	if kb.ID == "" {
		kb.ID = engine.NewID()
	}
	kb.CreatedAt, kb.UpdatedAt = time.Now(), time.Now()
	c := *kb
	s.kbs[kb.Name] = &c
	return nil
}

func (s *memStore) KnowledgeBaseByName(ctx context.Context, name string) (*engine.KnowledgeBase, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kb, ok := s.kbs[name]
	if !ok {
		return nil, engine.Errorf(engine.ENOTFOUND, "knowledge base %q not found", name)
	}
	c := *kb
	return &c, nil
}

func (s *memStore) ListKnowledgeBases(ctx context.Context) ([]*engine.KnowledgeBase, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*engine.KnowledgeBase
	for _, kb := range s.kbs {
		c := *kb
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *engine.KnowledgeBase) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *memStore) DeleteKnowledgeBase(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.kbs[name]; !ok {
		return engine.Errorf(engine.ENOTFOUND, "knowledge base %q not found", name)
	}
	delete(s.kbs, name)
	for id, d := range s.docs {
		if d.KnowledgeBase == name {
			delete(s.docs, id)
		}
	}
	return nil
}

func (s *memStore) SaveDocument(ctx context.Context, d *engine.Document) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.kbs[d.KnowledgeBase]; !ok {
		return engine.Errorf(engine.ENOTFOUND, "knowledge base %q not found", d.KnowledgeBase)
	}
	now := time.Now()
	d.CreatedAt = now
	for _, old := range s.docs {
		if old.KnowledgeBase == d.KnowledgeBase && old.Source == d.Source {
			d.ID, d.CreatedAt = old.ID, old.CreatedAt
		}
	}
	if d.ID == "" {
		d.ID = engine.NewID()
	}
	d.UpdatedAt = now
	c := *d
	c.Content = slices.Clone(d.Content)
	s.docs[d.ID] = &c
	return nil
}

func (s *memStore) doc(id string, withContent bool) (*engine.Document, error) {
	d, ok := s.docs[id]
	if !ok {
		return nil, engine.Errorf(engine.ENOTFOUND, "document %q not found", id)
	}
	c := *d
	c.Content = nil
	if withContent {
		c.Content = slices.Clone(d.Content)
	}
	return &c, nil
}

func (s *memStore) DocumentByID(ctx context.Context, id string) (*engine.Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doc(id, true)
}

func (s *memStore) DocumentBySource(ctx context.Context, kb, source string) (*engine.Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, d := range s.docs {
		if d.KnowledgeBase == kb && d.Source == source {
			return s.doc(id, true)
		}
	}
	return nil, engine.Errorf(engine.ENOTFOUND, "document %q not found", source)
}

func (s *memStore) ListDocuments(ctx context.Context, kb string) ([]*engine.Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*engine.Document
	for id, d := range s.docs {
		if d.KnowledgeBase == kb {
			c, _ := s.doc(id, false)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *engine.Document) int { return cmp.Compare(a.Source, b.Source) })
	return out, nil
}

func (s *memStore) SetDocumentStatus(ctx context.Context, id string, status engine.DocumentStatus, chunks int, errMsg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSetStatus != nil {
		return s.failSetStatus
	}
	d, ok := s.docs[id]
	if !ok {
		return engine.Errorf(engine.ENOTFOUND, "document %q not found", id)
	}
	d.Status, d.Chunks, d.Error, d.UpdatedAt = status, chunks, errMsg, time.Now()
	return nil
}

func (s *memStore) DeleteDocument(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.docs[id]; !ok {
		return engine.Errorf(engine.ENOTFOUND, "document %q not found", id)
	}
	delete(s.docs, id)
	return nil
}

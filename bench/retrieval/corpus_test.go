package main

import (
	"context"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

const renderedCat = `CAT(1)                           User Commands                          CAT(1)

NAME
       cat - concatenate files and print on the standard output

SYNOPSIS
       cat [OPTION]... [FILE]...

DESCRIPTION
       Concatenate FILE(s) to standard output.
`

func TestSplitName(t *testing.T) {
	p, ok := SplitName(renderedCat)
	if !ok {
		t.Fatal("no NAME section found")
	}
	if p.Description != "concatenate files and print on the standard output" {
		t.Errorf("description = %q", p.Description)
	}
	if !reflect.DeepEqual(p.Names, []string{"cat"}) {
		t.Errorf("names = %q", p.Names)
	}
	if strings.Contains(p.Text, "NAME") || strings.Contains(p.Text, "concatenate files and print") {
		t.Errorf("the NAME section is still in the text:\n%s", p.Text)
	}
	for _, want := range []string{"CAT(1)", "SYNOPSIS", "Concatenate FILE(s) to standard output."} {
		if !strings.Contains(p.Text, want) {
			t.Errorf("text lost %q:\n%s", want, p.Text)
		}
	}
}

func TestSplitNameWrappedAndSeveralNames(t *testing.T) {
	text := "MEM(4)\n\nNAME\n       mem, kmem, port - system memory, kernel memory and\n       system ports\n\nDESCRIPTION\n       body\n"
	p, ok := SplitName(text)
	if !ok || p.Description != "system memory, kernel memory and system ports" ||
		!reflect.DeepEqual(p.Names, []string{"mem", "kmem", "port"}) {
		t.Fatalf("SplitName = %+v, %v", p, ok)
	}
	if _, ok := SplitName("FOO(1)\n\nDESCRIPTION\n       no name section\n"); ok {
		t.Error("a page without NAME was accepted")
	}
	if _, ok := SplitName("FOO(1)\n\nNAME\n       foo\n\nDESCRIPTION\n"); ok {
		t.Error("a NAME without a description was accepted")
	}
}

func TestIsSoStub(t *testing.T) {
	for src, want := range map[string]bool{
		".so man2/stat.2\n":                           true,
		".\\\" Copyright\n.\\\" more\n.so man3/x.3\n": true,
		".TH CP 1\n.SH NAME\ncp \\- copy\n":           false,
		".\\\" .so in a comment\n.TH X 7\n":           false,
	} {
		if got := isSoStub([]byte(src)); got != want {
			t.Errorf("isSoStub(%q) = %v, want %v", src, got, want)
		}
	}
}

// TestRealPages renders two installed pages the way the corpus does.
func TestRealPages(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man is not installed (apt-get install man-db groff-base)")
	}
	for _, c := range []struct {
		file, names, desc string
	}{
		{"/usr/share/man/man1/cp.1.gz", "cp", "copy files and directories"},
		{"/usr/share/man/man4/null.4.gz", "null,zero", "data sink"},
		// Wraps in NAME: no hyphenation may split "current".
		{"/usr/share/man/man1/users.1.gz", "users", "print the user names of users currently logged in to the current host"},
	} {
		if _, err := os.Stat(c.file); err != nil {
			t.Logf("skip %s: %v", c.file, err)
			continue
		}
		text, err := renderPage(context.Background(), c.file)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := SplitName(text)
		if !ok {
			t.Fatalf("%s: no NAME section in:\n%s", c.file, text[:min(len(text), 400)])
		}
		if p.Description != c.desc || strings.Join(p.Names, ",") != c.names {
			t.Errorf("%s: names %q, description %q; want %s - %s", c.file, p.Names, p.Description, c.names, c.desc)
		}
		if strings.Contains(p.Text, c.desc) {
			t.Errorf("%s: the description is still in the document", c.file)
		}
		if strings.ContainsRune(p.Text, '\b') {
			t.Errorf("%s: overstrikes left in the text", c.file)
		}
	}
}

func TestQueriesGroupSharedDescriptions(t *testing.T) {
	c := &Corpus{Pages: []Page{
		{Doc: "resolv.conf.5", Description: "resolver configuration file"},
		{Doc: "cp.1", Description: "copy files and directories"},
		{Doc: "resolver.5", Description: "Resolver  configuration file"},
	}}
	got := c.Queries()
	want := []Query{
		{Text: "resolver configuration file", Answers: []string{"resolv.conf.5", "resolver.5"}},
		{Text: "copy files and directories", Answers: []string{"cp.1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Queries = %+v, want %+v", got, want)
	}
}

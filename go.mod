module github.com/convosphere/convosphere

go 1.26

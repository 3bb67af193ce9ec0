module github.com/txmq/txmq

go 1.26.8

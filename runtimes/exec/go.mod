module ignite-exec

go 1.26

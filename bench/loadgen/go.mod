module bidtrace/bench/loadgen

go 1.22

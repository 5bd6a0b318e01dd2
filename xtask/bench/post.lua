-- wrk script for `cargo xtask bench`: the same POST on every request. @NAME@ are filled in
-- by xtask/src/bench/wrk.rs.
wrk.method = "POST"
wrk.body = [==[@BODY@]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer @TOKEN@"

-- wrk script: HTTP/1.1 pipelining. Each connection sends DEPTH requests for
-- the URL's path in one write and waits for all DEPTH responses before the
-- next batch; wrk counts every response as a request, so Requests/sec is
-- responses per second. Latency is per batch.
--   wrk -t1 -c256 -d8s --latency -s bench/pipeline.lua URL -- 16
-- DEPTH is the first script argument (default 16).

local depth = 16
local batch

init = function(args)
  if args[1] ~= nil then
    depth = tonumber(args[1])
  end
  local requests = {}
  for i = 1, depth do
    requests[i] = wrk.format("GET", wrk.path)
  end
  batch = table.concat(requests)
end

request = function()
  return batch
end

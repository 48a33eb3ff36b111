local d = nn.Dense { 5 } --!
local m = nn.Sequential { nn.Dense { 3, input_shape = { 4 } }, d, nn.Dense { 7 } }
m:add(d)

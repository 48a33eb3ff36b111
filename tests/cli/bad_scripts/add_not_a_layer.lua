local m = nn.Sequential()
m:add(5) --!

local m = nn.Sequential(5) --!

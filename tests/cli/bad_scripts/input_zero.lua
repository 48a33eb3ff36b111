local x = nn.Input { 28, 0, 1 } --!

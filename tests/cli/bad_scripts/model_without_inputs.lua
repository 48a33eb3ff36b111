local m = nn.Model { outputs = 1 } --!

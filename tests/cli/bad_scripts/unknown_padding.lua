local c = nn.Conv2D { 8, 3, padding = "full" } --!

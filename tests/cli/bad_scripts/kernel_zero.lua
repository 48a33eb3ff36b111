local c = nn.Conv2D { 8, 0 } --!

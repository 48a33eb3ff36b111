local c = nn.Conv2D { 8.5, 3 } --!

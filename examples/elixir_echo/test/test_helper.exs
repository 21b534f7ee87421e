:ok = :rssl.start()
ExUnit.start()

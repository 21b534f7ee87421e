defmodule ElixirEcho.Client do
  @moduledoc """
  A client of `ElixirEcho.Server`: connects over `:rssl` (passive mode) and
  checks that what it sends comes back unchanged.
  """

  @doc """
  Connects to `host:port`; `tls` holds the verification options
  (`verify: :verify_peer`, `cacerts:`, ...).
  """
  def connect(host, port, tls, timeout \\ 10_000) do
    :rssl.connect(to_charlist(host), port, [:binary, active: false] ++ tls, timeout)
  end

  @doc "Sends `data` and returns what the server sent back, byte for byte as long."
  def echo(socket, data, timeout \\ 10_000) do
    with :ok <- :rssl.send(socket, data) do
      :rssl.recv(socket, byte_size(data), timeout)
    end
  end

  @doc "The TLS version the connection negotiated (`:\"tlsv1.3\"`, ...)."
  def protocol(socket) do
    {:ok, [protocol: version]} = :rssl.connection_information(socket, [:protocol])
    version
  end

  def close(socket), do: :rssl.close(socket)
end

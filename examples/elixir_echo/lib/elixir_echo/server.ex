defmodule ElixirEcho.Server do
  @moduledoc """
  A TLS echo server over `:rssl`: a process that owns the listening socket,
  an acceptor, and one process per connection that sends back whatever it
  receives until the client closes.

  With `notify: pid`, each connection process tells `pid` how it ended:
  `{:echo_closed, conn, bytes_echoed}`, `{:echo_error, conn, reason}` or
  `{:echo_handshake_failed, conn, reason}`.
  """
  use GenServer

  # How long a client has to finish the handshake.
  @handshake_timeout 10_000

  @doc """
  Starts a server. Options: `tls:` (the certificate options `:rssl.listen/2`
  takes, required), `port:` (0, the default, picks a free one), `notify:`.
  """
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts)

  @doc "The port the server listens on."
  def port(server), do: GenServer.call(server, :port)

  @doc "Closes the listening socket; connections already open go on."
  def stop(server), do: GenServer.stop(server)

  @impl true
  def init(opts) do
    listen_opts = [:binary, active: false, reuseaddr: true] ++ Keyword.fetch!(opts, :tls)

    case :rssl.listen(Keyword.get(opts, :port, 0), listen_opts) do
      {:ok, listen} ->
        {:ok, {_, port}} = :rssl.sockname(listen)
        notify = Keyword.get(opts, :notify)
        acceptor = spawn_link(fn -> accept_loop(listen, notify) end)
        {:ok, %{listen: listen, port: port, acceptor: acceptor}}

      {:error, reason} ->
        {:stop, reason}
    end
  end

  @impl true
  def handle_call(:port, _from, state), do: {:reply, state.port, state}

  @impl true
  def terminate(_reason, state) do
    # The acceptor's transport_accept returns {:error, :closed} and it ends.
    :rssl.close(state.listen)
  end

  defp accept_loop(listen, notify) do
    case :rssl.transport_accept(listen) do
      {:ok, transport} ->
        conn = spawn(fn -> connection(notify) end)
        # The connection process owns the socket before the handshake, so
        # the acceptor is back in transport_accept at once.
        :ok = :rssl.controlling_process(transport, conn)
        send(conn, {:socket, transport})
        accept_loop(listen, notify)

      {:error, :closed} ->
        :ok
    end
  end

  defp connection(notify) do
    receive do
      {:socket, transport} ->
        case :rssl.handshake(transport, @handshake_timeout) do
          {:ok, socket} ->
            :ok = :rssl.setopts(socket, active: :once)
            echo(socket, notify, 0)

          {:error, reason} ->
            tell(notify, {:echo_handshake_failed, self(), reason})
        end
    end
  end

  defp echo(socket, notify, echoed) do
    receive do
      {:ssl, ^socket, data} ->
        :ok = :rssl.send(socket, data)
        :ok = :rssl.setopts(socket, active: :once)
        echo(socket, notify, echoed + byte_size(data))

      {:ssl_closed, ^socket} ->
        :rssl.close(socket)
        tell(notify, {:echo_closed, self(), echoed})

      {:ssl_error, ^socket, reason} ->
        :rssl.close(socket)
        tell(notify, {:echo_error, self(), reason})
    end
  end

  defp tell(nil, _message), do: :ok
  defp tell(pid, message), do: send(pid, message)
end
